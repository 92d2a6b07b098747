"""``seasonal_naive``: the peak ahead is the peak at the same time one season ago."""

from __future__ import annotations

import numpy as np

from autoscaler.forecast.base import FloatArray, ForecastError, Horizon, IntArray
from autoscaler.forecast.calibrated import CalibratedForecaster

__all__ = ["SeasonalNaiveForecaster"]

DAY = 86_400.0


class SeasonalNaiveForecaster(CalibratedForecaster):
    """Peak over the same window one season (a day by default) earlier."""

    name = "seasonal_naive"

    def __init__(
        self,
        horizon: Horizon,
        quantile: float,
        quiet_offset: float = 0.2,
        season_seconds: float = DAY,
    ) -> None:
        super().__init__(horizon, quantile, quiet_offset)
        self.season = round(season_seconds / horizon.step_seconds)
        if self.season <= horizon.steps:
            raise ForecastError(f"{self.name}: season must be longer than the horizon")

    def first_origin(self) -> int:
        return self.season

    def point(self, values: FloatArray, origins: IntArray) -> FloatArray:
        out = np.empty(len(origins))
        for k, o in enumerate(origins):
            if o < self.season:
                out[k] = values[o]
                continue
            start = o - self.season + 1
            window = values[start : start + self.horizon.steps]
            out[k] = np.nanmax(window) if np.isfinite(window).any() else values[o]
        return out
