"""A workload's load on a regular grid, kept between decisions.

Filled once from the store (a range query over the model's history window) and then one
observation per decision. A step without an observation holds the latest one for up to
``hold_seconds`` (the query engine's lookback, as the range query that filled it does), so a
load sampled less often than the grid has no holes; after that it stays NaN, which the
forecasters read as a gap.
"""

from __future__ import annotations

import math

import numpy as np

from autoscaler.forecast.base import FloatArray, Series

__all__ = ["GridHistory"]


class GridHistory:
    """Load per ``step_seconds``, at most ``keep_seconds`` of it."""

    def __init__(self, step_seconds: float, keep_seconds: float, hold_seconds: float = 0.0) -> None:
        self.step_seconds = step_seconds
        self.hold_seconds = hold_seconds
        self._capacity = max(2, math.ceil(keep_seconds / step_seconds))
        self._values: FloatArray = np.full(0, np.nan)
        self._start: float | None = None
        self._latest: tuple[float, float] | None = None  # (observed at, value)

    def __len__(self) -> int:
        return len(self._values)

    def _index(self, at: float) -> int:
        assert self._start is not None
        return math.floor((at - self._start) / self.step_seconds + 1e-9)

    def fill(self, start: float, values: FloatArray) -> None:
        """Replace everything with ``values`` on the grid from ``start``."""
        self._start = start
        self._values = np.asarray(values, np.float64)[-self._capacity :].copy()
        self._start = start + (len(values) - len(self._values)) * self.step_seconds
        finite = np.flatnonzero(np.isfinite(self._values))
        self._latest = (
            (self._start + finite[-1] * self.step_seconds, float(self._values[finite[-1]]))
            if len(finite)
            else None
        )

    def observe(self, at: float, value: float) -> None:
        """The load at ``at``; the step's value is the latest observation in it."""
        if self._start is None:
            self._start = at - at % self.step_seconds
        index = self._index(at)
        if index < 0:
            return
        if index >= len(self._values):
            grown = np.full(index + 1, np.nan)
            grown[: len(self._values)] = self._values
            if self._latest is not None and self.hold_seconds > 0:
                held_at, held = self._latest
                cells = np.arange(len(self._values), index)
                times = self._start + cells * self.step_seconds
                grown[cells[(times >= held_at) & (times - held_at < self.hold_seconds)]] = held
            self._values = grown
        self._values[index] = value
        if self._latest is None or at >= self._latest[0]:
            self._latest = (at, value)
        extra = len(self._values) - self._capacity
        if extra > 0:
            self._values = self._values[extra:]
            self._start += extra * self.step_seconds

    def series(self) -> Series | None:
        """The history as a forecaster reads it, or None when empty."""
        if self._start is None or not len(self._values):
            return None
        return Series(self._start, self.step_seconds, self._values.copy())
