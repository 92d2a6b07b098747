"""The autoscaler's forecast behind PromQL's ``forecast()`` (a
:class:`promql.forecast.SeriesForecaster`).

``forecast(v[w], h)`` gives, per series and step, what the controller forecasts for a
workload whose load history is the window's samples:

* the samples are laid on the controller's history grid (``controller.history_step_seconds``,
  cells aligned to multiples of the step); a cell holds its newest sample, a cell without one
  holds the newest earlier sample for up to the engine's lookback, and is a gap after that,
  as the controller's live history keeps them;
* the model is chosen and fitted as the controller's is
  (:class:`~autoscaler.forecast.selection.AutoForecaster` with the ``forecast`` settings:
  ``forecast.model``, falling back to reactive ``naive`` on a window shorter than
  ``forecast.min_history_hours`` or with gaps);
* the answer is its ``forecast.quantile`` of the *peak* over the ``h`` seconds after the
  newest cell (``h`` rounded up to whole steps, at least one), capped as
  :class:`~autoscaler.forecast.live.LiveForecast` caps it: never above the window's largest
  load of the last ``forecast.peak_cap_days`` or the current load.

So a capacity alert on ``forecast()`` fires when the autoscaler itself wants more than it may
have. Nothing is kept between calls: each fits on its own window, well under a millisecond
for ``naive`` on an hour of minutes; learned models (``quantile_gbm``, or ``auto`` on a
window of a day or more) cost far more per series and step.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from autoscaler.forecast.base import FloatArray, ForecastError, Horizon, IntArray, Series
from autoscaler.forecast.live import LiveForecast
from autoscaler.forecast.selection import AutoForecaster
from autoscaler.forecast.settings import ForecastSettings

if TYPE_CHECKING:
    from autoscaler.settings import Settings

__all__ = ["ModelForecaster"]


class ModelForecaster:
    """``forecast()``'s model: the configured forecaster on the controller's grid."""

    def __init__(
        self, settings: ForecastSettings, step_seconds: float, hold_seconds: float = 0.0
    ) -> None:
        if not step_seconds > 0:
            raise ForecastError(f"history step must be > 0 s, got {step_seconds}")
        self.settings = settings
        self.step_seconds = step_seconds
        self.hold_seconds = hold_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelForecaster:
        """The forecaster of the controller that ``settings`` configure."""
        return cls(
            settings.forecast,
            settings.controller.history_step_seconds,
            settings.promql.lookback_delta_seconds,
        )

    def history(self, timestamps_ms: IntArray, values: FloatArray) -> Series:
        """The samples on the grid: each cell's newest sample; a cell without one holds the
        newest earlier sample for up to ``hold_seconds`` (as the controller's history does),
        NaN after."""
        step = self.step_seconds
        seconds = timestamps_ms / 1000.0
        start = float(seconds[0] - seconds[0] % step)
        cells = np.floor((seconds - start) / step + 1e-9).astype(np.int64)
        grid = np.full(int(cells[-1]) + 1, np.nan)
        newest = np.append(cells[1:] != cells[:-1], True)
        grid[cells[newest]] = values[newest]
        if self.hold_seconds > 0:
            every = np.arange(len(grid))
            k = np.searchsorted(cells[newest], every, side="right") - 1
            held_at = seconds[newest][k]
            hold = np.isnan(grid) & (start + every * step - held_at < self.hold_seconds)
            grid[hold] = values[newest][k[hold]]
        return Series(start, step, grid)

    def __call__(
        self, timestamps_ms: IntArray, values: FloatArray, at_ms: int, horizon_seconds: float
    ) -> float | None:
        """The peak forecast over ``horizon_seconds``; None without a finite answer."""
        level = float(values[-1])
        if not (math.isfinite(level) and math.isfinite(horizon_seconds)):
            return None
        history = self.history(timestamps_ms, values)
        steps = max(1, math.ceil(horizon_seconds / self.step_seconds - 1e-9))
        model = AutoForecaster(Horizon(self.step_seconds, steps), self.settings)
        model.fit(history)
        peak = LiveForecast.from_settings(model, self.settings).peak(history, level)
        return peak if math.isfinite(peak) else None
