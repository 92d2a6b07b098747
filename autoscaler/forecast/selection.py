"""Choosing a forecaster per workload, and when to fall back to reactive scaling.

At every re-fit the candidates are fitted on the history minus its most recent part and
scored on that held-out part by pinball loss at the target quantile (rolling origin: the
answer at each origin uses only values up to it). The best candidate is re-fitted on the whole
history. Reactive scaling (``naive``: current load with calibrated headroom) is used instead
when the history is short or has gaps, or when the best candidate does worse than
``seasonal_naive`` on the held-out part.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from autoscaler.forecast.base import (
    FloatArray,
    Forecaster,
    ForecastError,
    Horizon,
    IntArray,
    Series,
)
from autoscaler.forecast.peaks import future_peaks, pinball_loss
from autoscaler.forecast.quantile_gbm import available
from autoscaler.forecast.registry import AUTO, make_forecaster
from autoscaler.forecast.settings import ForecastSettings

__all__ = ["AutoForecaster", "Choice", "ChoiceReason", "pinball_loss"]

# quantile_gbm only where scikit-learn (an optional extra) is installed.
CANDIDATES = ("naive", "conformal", "holt_winters", *(("quantile_gbm",) if available() else ()))
YARDSTICK = "seasonal_naive"
REACTIVE = "naive"
# Held-out origins are thinned to this many to bound the cost of a re-fit.
_MAX_ORIGINS = 1500


class ChoiceReason(enum.StrEnum):
    """Why a forecaster was chosen (machine-readable)."""

    BEST_BACKTEST = "best_backtest"
    SHORT_HISTORY = "short_history"
    GAPS = "gaps"
    WORSE_THAN_SEASONAL = "worse_than_seasonal_naive"
    CONFIGURED = "configured"
    FIT_FAILED = "fit_failed"


@dataclass(frozen=True)
class Choice:
    """The forecaster in use and why, with the held-out losses that decided it."""

    name: str
    reason: ChoiceReason
    losses: dict[str, float] = field(default_factory=dict)


class AutoForecaster:
    """A :class:`Forecaster` that delegates to the model chosen for this workload."""

    name = AUTO

    def __init__(self, horizon: Horizon, settings: ForecastSettings) -> None:
        self.horizon = horizon
        self.settings = settings
        self.choice = Choice(REACTIVE, ChoiceReason.SHORT_HISTORY)
        self._model: Forecaster | None = None

    @property
    def offset(self) -> float:
        return self._model.offset if self._model is not None else 0.0

    def _fit_named(self, name: str, history: Series) -> Forecaster:
        model = make_forecaster(name, self.horizon, self.settings)
        model.fit(history)
        return model

    def fit(self, history: Series) -> None:
        s = self.settings
        values = history.values
        steps_per_hour = 3600 / history.step_seconds
        window = values[-round(s.history_days * 24 * steps_per_hour) :]
        if len(values) < s.min_history_hours * steps_per_hour:
            self._use(REACTIVE, ChoiceReason.SHORT_HISTORY, history)
            return
        if np.isnan(window).mean() > s.max_gap_fraction:
            self._use(REACTIVE, ChoiceReason.GAPS, history)
            return
        if s.model != AUTO:
            self._use(s.model, ChoiceReason.CONFIGURED, history)
            return
        losses = self._held_out_losses(history)
        best = min(CANDIDATES, key=lambda n: losses.get(n, float("inf")))
        if losses.get(best, float("inf")) > losses.get(YARDSTICK, float("inf")):
            self._use(REACTIVE, ChoiceReason.WORSE_THAN_SEASONAL, history, losses)
        else:
            self._use(best, ChoiceReason.BEST_BACKTEST, history, losses)

    def _use(
        self,
        name: str,
        reason: ChoiceReason,
        history: Series,
        losses: dict[str, float] | None = None,
    ) -> None:
        try:
            self._model = self._fit_named(name, history)
        except ForecastError:
            name, reason = REACTIVE, ChoiceReason.FIT_FAILED
            self._model = self._fit_named(REACTIVE, history)
        self.choice = Choice(name, reason, losses or {})

    def _held_out_losses(self, history: Series) -> dict[str, float]:
        values = history.values
        held = round(self.settings.validation_hours * 3600 / history.step_seconds)
        split = len(values) - held
        train = Series(history.start_time, history.step_seconds, values[:split])
        last = len(values) - 1 - self.horizon.steps
        stride = max(1, (last - split) // _MAX_ORIGINS)
        origins = np.arange(split, last + 1, stride, dtype=np.int64)
        actual = future_peaks(values, self.horizon.steps)[origins]
        losses: dict[str, float] = {}
        for name in (*CANDIDATES, YARDSTICK):
            try:
                model = self._fit_named(name, train)
            except ForecastError:
                continue
            predicted = model.backtest(history, origins)
            losses[name] = pinball_loss(actual, predicted, self.settings.quantile)
        return losses

    def _require(self) -> Forecaster:
        if self._model is None:
            raise ForecastError("auto: predict before fit")
        return self._model

    def predict(self, history: Series) -> float:
        return self._require().predict(history)

    def backtest(self, history: Series, origins: IntArray) -> FloatArray:
        return self._require().backtest(history, origins)
