"""The forecaster interface and the values it works on.

A forecaster answers one question: what is the ``quantile``-th quantile of the peak load over
the next ``horizon.steps`` grid steps after the last value it is shown? It is fitted on a
history and later asked with a longer history; it must never look past the last value it is
given, and ``backtest`` must use only ``values[: origin + 1]`` for the answer at ``origin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["FloatArray", "ForecastError", "Forecaster", "Horizon", "IntArray", "Series"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class ForecastError(Exception):
    """A forecaster cannot be built, fitted or asked; the message names the model."""


@dataclass(frozen=True)
class Horizon:
    """How far ahead the peak is wanted: ``steps`` grid steps of ``step_seconds``."""

    step_seconds: float
    steps: int

    def __post_init__(self) -> None:
        if self.step_seconds <= 0 or self.steps < 1:
            raise ForecastError(f"horizon needs step > 0 s and >= 1 step, got {self}")

    @classmethod
    def covering(cls, startup_seconds: float, step_seconds: float) -> Horizon:
        """Pod startup plus one decision interval: the load new pods will meet first."""
        steps = int(np.ceil(startup_seconds / step_seconds - 1e-9)) + 1
        return cls(step_seconds=step_seconds, steps=steps)


@dataclass(frozen=True)
class Series:
    """Load on a regular grid, oldest first; NaN marks a missing sample."""

    start_time: float
    step_seconds: float
    values: FloatArray

    @property
    def now(self) -> float:
        """Time of the last value (unix seconds)."""
        return self.start_time + (len(self.values) - 1) * self.step_seconds

    def times(self, index: IntArray) -> FloatArray:
        """Unix times of the given positions."""
        return self.start_time + index.astype(np.float64) * self.step_seconds


class Forecaster(Protocol):
    """A model of the peak load over the next horizon, at one quantile."""

    name: str

    @property
    def offset(self) -> float:
        """Load added before taking ratios (quiet workloads), in load units."""
        ...

    def fit(self, history: Series) -> None:
        """Learn from ``history`` (every value is at or before now)."""
        ...

    def predict(self, history: Series) -> float:
        """The quantile of the peak over the horizon after the last value of ``history``."""
        ...

    def backtest(self, history: Series, origins: IntArray) -> FloatArray:
        """What ``predict`` would have said at each origin, seeing only values up to it."""
        ...
