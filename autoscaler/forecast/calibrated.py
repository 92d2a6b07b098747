"""Forecasters made of a point forecast of the peak and a multiplier for the quantile."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from autoscaler.forecast.base import FloatArray, ForecastError, Horizon, IntArray, Series
from autoscaler.forecast.peaks import calibrate_ratio, level_scale

__all__ = ["CalibratedForecaster"]

# The multiplier is learned on at most this many recent steps (a week of 15 s steps).
_CALIBRATION_STEPS = 7 * 5760


class CalibratedForecaster(ABC):
    """Point forecast × (quantile of actual/point over the recent past).

    The ratio is taken on load plus an offset (a fraction of the recent mean) so that quiet
    periods do not blow the multiplier up.
    """

    name = "calibrated"

    def __init__(self, horizon: Horizon, quantile: float, quiet_offset: float) -> None:
        if not 0 < quantile < 1:
            raise ForecastError(f"{self.name}: quantile must be in (0, 1), got {quantile}")
        self.horizon = horizon
        self.quantile = quantile
        self.quiet_offset = quiet_offset
        self.multiplier = 1.0
        self.offset = 0.0
        self.fitted = False

    @abstractmethod
    def point(self, values: FloatArray, origins: IntArray) -> FloatArray:
        """Point forecast of the peak after each origin, from ``values[: origin + 1]`` only."""

    def first_origin(self) -> int:
        """The earliest origin with enough history for a point forecast."""
        return 0

    def fit(self, history: Series) -> None:
        values = history.values
        steps = self.horizon.steps
        self.offset = self.quiet_offset * level_scale(values, round(86_400 / history.step_seconds))
        last = len(values) - 1 - steps  # the latest origin whose peak is known
        first = max(self.first_origin(), last - _CALIBRATION_STEPS)
        if last <= first:
            self.multiplier, self.fitted = 1.0, True
            return
        origins = np.arange(first, last + 1, dtype=np.int64)
        point = self.point(values, origins)
        self.multiplier = max(
            1.0, calibrate_ratio(values, point, origins, steps, self.offset, self.quantile)
        )
        self.fitted = True

    def predict(self, history: Series) -> float:
        origin = np.array([len(history.values) - 1], dtype=np.int64)
        return float(self.backtest(history, origin)[0])

    def backtest(self, history: Series, origins: IntArray) -> FloatArray:
        if not self.fitted:
            raise ForecastError(f"{self.name}: predict before fit")
        point = self.point(history.values, origins)
        return np.maximum((point + self.offset) * self.multiplier - self.offset, 0.0)
