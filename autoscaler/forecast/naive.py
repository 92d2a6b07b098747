"""``naive``: the peak ahead is the current load, times a multiplier learned from history."""

from __future__ import annotations

import numpy as np

from autoscaler.forecast.base import FloatArray, Horizon, IntArray
from autoscaler.forecast.calibrated import CalibratedForecaster

__all__ = ["NaiveForecaster"]


class NaiveForecaster(CalibratedForecaster):
    """Last value as the point forecast: reactive scaling with calibrated headroom."""

    name = "naive"

    def __init__(self, horizon: Horizon, quantile: float, quiet_offset: float = 0.2) -> None:
        super().__init__(horizon, quantile, quiet_offset)

    def point(self, values: FloatArray, origins: IntArray) -> FloatArray:
        return np.asarray(values[origins], dtype=np.float64)
