"""``hpa-on-forecast@T``: a plain Kubernetes HPA whose only metric is foresight's forecast.

This is what a team gets by keeping its HorizontalPodAutoscaler and pointing it at the
``foresight_forecast_peak`` external metric (``AverageValue`` target = T × the load one pod
serves) instead of CPU: the default forecaster's peak over the horizon at its quantile,
exactly as :class:`ForesightPolicy` computes it (same model, quantile, re-fit schedule and
live scaling between evaluations), then the HPA's rules (:class:`HpaPolicy`: tolerance,
scale-up limit, 300 s stabilisation) instead of foresight's horizontal policy.
"""

from __future__ import annotations

import math

from autoscaler.backtest.foresight import ForesightPolicy
from autoscaler.backtest.observation import DemandHistory, Observation, WorkloadInfo
from autoscaler.backtest.reference import HpaPolicy
from autoscaler.forecast.settings import ForecastSettings

__all__ = ["HpaOnForecastPolicy"]


class HpaOnForecastPolicy:
    """The HPA at target ``target`` on foresight's forecast peak."""

    def __init__(
        self,
        info: WorkloadInfo,
        target: float,
        forecast: ForecastSettings | None = None,
        memo: dict[int, float] | None = None,
    ) -> None:
        self.hpa = HpaPolicy(info, target)
        self.forecaster = ForesightPolicy(info, forecast)
        self.target = target
        self._capacity = info.capacity_per_replica
        # Forecasts by history length, shared by replays of one trace at other targets: the
        # demand history, hence the forecast, does not depend on the replicas chosen.
        self._memo = memo if memo is not None else {}
        self.forecasts: list[float] = []  # at each decision, the first for the initial replicas

    def _forecast(self, history: DemandHistory) -> float:
        key = len(history)
        if key not in self._memo:
            self._memo[key] = self.forecaster.forecast(history)
        self.forecasts.append(self._memo[key])
        return self._memo[key]

    def initial(self, history: DemandHistory) -> int:
        # The HPA has been running on the metric: as many pods as the forecast asks for.
        peak = self._forecast(history)
        return max(1, math.ceil(peak / (self._capacity * self.target) - 1e-9))

    def decide(self, obs: Observation) -> int:
        peak = self._forecast(obs.history)
        return self.hpa.settle(self.hpa.value_proposal(peak, obs), obs)
