"""The forecast of one autoscaler, kept between decisions.

Wraps :class:`~autoscaler.forecast.selection.AutoForecaster` and
:class:`~autoscaler.forecast.live.LiveForecast` as the backtest uses them: re-fitted on a
schedule, re-evaluated every few minutes, applied to the live load in between. It also keeps
the forecast error: each forecast peak is compared with the peak that came over its horizon.

A fit of a learned model takes seconds; :meth:`KeptForecast.peak_async` runs it in a worker
thread so that the reconcile awaiting it never stalls the event loop. The reconcile waits for
the fit, so a decision uses the model fitted at that moment, exactly as :meth:`peak` (and the
backtest) would.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from autoscaler.forecast.base import Horizon, Series
from autoscaler.forecast.live import LiveForecast
from autoscaler.forecast.selection import AutoForecaster, Choice, ChoiceReason
from autoscaler.forecast.settings import ForecastSettings
from autoscaler.resource.model import ForecastSpec
from runtime.clock import Clock, in_thread

__all__ = ["KeptForecast"]

_ERROR_WINDOW = 120


class KeptForecast:
    """The forecaster of one autoscaler and its recent accuracy."""

    def __init__(self, spec: ForecastSpec, defaults: ForecastSettings, step: float) -> None:
        self.spec = spec
        self.settings = defaults.model_copy(update={"model": spec.model, "quantile": spec.quantile})
        self.horizon = Horizon(step, max(1, math.ceil(spec.horizon_seconds / step - 1e-9)))
        self.forecaster = AutoForecaster(self.horizon, self.settings)
        self.live = LiveForecast.from_settings(self.forecaster, self.settings)
        self.fitted_at: float | None = None
        self._pending: deque[tuple[float, float]] = deque()  # (made at, peak)
        self._errors: deque[float] = deque(maxlen=_ERROR_WINDOW)

    @property
    def choice(self) -> Choice:
        """The model in use and why."""
        return self.forecaster.choice

    @property
    def ready(self) -> bool:
        """Whether the forecast is the model's, not the reactive fallback for lack of data."""
        return self.fitted_at is not None and self.choice.reason not in (
            ChoiceReason.SHORT_HISTORY,
            ChoiceReason.GAPS,
        )

    def peak(self, history: Series, level: float) -> float:
        """The forecast peak over the horizon after ``history``, whose load now is ``level``."""
        if self.needs_fit(history):
            self.forecaster.fit(history)
        return self._after_fit(history, level)

    async def peak_async(self, history: Series, level: float, clock: Clock) -> float:
        """:meth:`peak`, with the model's fit (when one is due) in a worker thread that
        ``clock``'s virtual time waits for."""
        if self.needs_fit(history):
            await in_thread(clock, self.forecaster.fit, history)
        return self._after_fit(history, level)

    def needs_fit(self, history: Series) -> bool:
        """Whether the model is due for a (re)fit at ``history``'s end."""
        refit = self.settings.refit_hours * 3600
        return self.fitted_at is None or history.now - self.fitted_at >= refit

    def _after_fit(self, history: Series, level: float) -> float:
        now = history.now
        if self.needs_fit(history):
            self.live.invalidate()
            self.fitted_at = now
        value = self.live.peak(history, level)
        self._score(history)
        if not self._pending or now - self._pending[-1][0] >= history.step_seconds:
            self._pending.append((now, value))
        return value

    def _score(self, history: Series) -> None:
        span = self.horizon.steps * self.horizon.step_seconds
        values = history.values
        while self._pending and self._pending[0][0] + span <= history.now:
            made, predicted = self._pending.popleft()
            first = math.floor((made - history.start_time) / history.step_seconds) + 1
            window = values[max(0, first) : first + self.horizon.steps]
            window = window[np.isfinite(window)]
            if len(window) and window.max() > 0:
                actual = float(window.max())
                self._errors.append(abs(predicted - actual) / actual)

    @property
    def error_ratio(self) -> float | None:
        """Mean absolute error of recent forecast peaks, relative to the realised peaks."""
        return float(np.mean(self._errors)) if self._errors else None
