"""foresight's own policy in the backtest world: forecast, then the horizontal policy.

The world's capacity per replica is the load one replica serves within the SLO, so the
target utilisation is 1 and all headroom comes from the forecast quantile. The maximum is
the HPA's 1,000 replicas so that neither side gets a bound the other lacks.
"""

from __future__ import annotations

import math

from autoscaler.backtest.observation import DemandHistory, Observation, WorkloadInfo
from autoscaler.forecast.base import Horizon, Series
from autoscaler.forecast.live import LiveForecast
from autoscaler.forecast.selection import AutoForecaster
from autoscaler.forecast.settings import ForecastSettings
from autoscaler.policy.horizontal import (
    HorizontalDecision,
    LoadSignal,
    ReplicaState,
    decide_replicas,
)
from autoscaler.policy.settings import HorizontalSettings

__all__ = ["ForesightPolicy", "backtest_horizontal_settings"]


def backtest_horizontal_settings() -> HorizontalSettings:
    """The horizontal settings foresight runs with in the benchmark world."""
    return HorizontalSettings(min_replicas=1, max_replicas=1000, target_utilisation=1.0)


class ForesightPolicy:
    """Re-fits on a schedule, forecasts the peak over startup + one step (or the given
    horizon), decides replicas."""

    def __init__(
        self,
        info: WorkloadInfo,
        forecast: ForecastSettings | None = None,
        horizontal: HorizontalSettings | None = None,
        horizon_seconds: float | None = None,
    ) -> None:
        self.info = info
        self.forecast_settings = forecast or ForecastSettings()
        self.settings = horizontal or backtest_horizontal_settings()
        step = info.step_seconds
        self.horizon = (
            Horizon.covering(info.startup_seconds, step)
            if horizon_seconds is None
            # A PredictiveAutoscaler's own horizon, in whole steps as the controller takes it.
            else Horizon(step, max(1, math.ceil(horizon_seconds / step - 1e-9)))
        )
        self.forecaster = AutoForecaster(self.horizon, self.forecast_settings)
        self.live = LiveForecast.from_settings(self.forecaster, self.forecast_settings)
        self._fitted_at: float | None = None
        self._state = ReplicaState(1, info.capacity_per_replica)
        self.pod_size = 1.0  # pods serve pod_size × the capacity per replica (see world.py)
        self.choices: list[tuple[float, str, str]] = []  # (time, model, reason) at each re-fit
        self.forecasts: list[float] = []
        self.last: HorizontalDecision | None = None

    def _series(self, history: DemandHistory) -> Series:
        return Series(history.start_time, history.step_seconds, history.values)

    def forecast(self, history: DemandHistory) -> float:
        """The forecast peak at the end of ``history``, re-fitting on schedule."""
        series = self._series(history)
        refit = self.forecast_settings.refit_hours * 3600
        if self._fitted_at is None or series.now - self._fitted_at >= refit:
            self.forecaster.fit(series)
            self.live.invalidate()
            self._fitted_at = series.now
            choice = self.forecaster.choice
            self.choices.append((series.now, choice.name, choice.reason.value))
        peak = self.live.peak(series, history.last())
        self.forecasts.append(peak)
        return peak

    def initial(self, history: DemandHistory) -> int:
        peak = max(self.forecast(history), history.last())
        capacity = self.info.capacity_per_replica * self.pod_size
        replicas = max(1, math.ceil(peak / capacity - 1e-9))
        replicas = min(max(replicas, self.settings.min_replicas), self.settings.max_replicas)
        # As the controller does on its first reconcile: the starting count is a
        # recommendation, so the scale-down window starts with it rather than being empty.
        self._state = ReplicaState(replicas, capacity, ((history.now, replicas),))
        return replicas

    def decide(self, obs: Observation) -> int:
        peak = self.forecast(obs.history)
        state = ReplicaState(
            obs.current, self.info.capacity_per_replica * self.pod_size, self._state.recommendations
        )
        signal = LoadSignal(load=obs.history.last(), observed_at=obs.now, forecast_peak=peak)
        decision = decide_replicas(signal, state, self.settings, obs.now)
        self._state = decision.state
        self.last = decision
        return decision.replicas
