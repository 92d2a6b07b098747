"""``holt_winters``: additive Holt-Winters on 5-minute means with a daily season."""

from __future__ import annotations

import numpy as np

from autoscaler.forecast.base import FloatArray, ForecastError, Horizon, IntArray
from autoscaler.forecast.calibrated import CalibratedForecaster

__all__ = ["HoltWintersForecaster"]


class HoltWintersForecaster(CalibratedForecaster):
    """Level, trend and daily season smoothed with fixed factors, as HPA add-ons offer it."""

    name = "holt_winters"

    def __init__(
        self,
        horizon: Horizon,
        quantile: float,
        quiet_offset: float = 0.2,
        bucket_seconds: float = 300.0,
        season_seconds: float = 86_400.0,
        alpha: float = 0.3,
        beta: float = 0.01,
        gamma: float = 0.2,
    ) -> None:
        super().__init__(horizon, quantile, quiet_offset)
        self.bucket = max(1, round(bucket_seconds / horizon.step_seconds))
        self.period = max(2, round(season_seconds / bucket_seconds))
        if not all(0 <= f <= 1 for f in (alpha, beta, gamma)):
            raise ForecastError(f"{self.name}: smoothing factors must be in [0, 1]")
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self._reset()

    def _reset(self) -> None:
        # Smoothing runs forward only; its state is kept so that asking with a longer history
        # costs only the buckets completed since the last call.
        self._done = 0
        self._check = np.nan
        self._level = 0.0
        self._trend = 0.0
        self._season = np.zeros(self.period)
        self._ahead: list[tuple[float, float]] = []  # after bucket b: 1- and 2-ahead means

    def first_origin(self) -> int:
        return self.bucket * 2

    def _means(self, values: FloatArray, buckets: int) -> FloatArray:
        block = values[: buckets * self.bucket].reshape(buckets, self.bucket)
        with np.errstate(all="ignore"):
            means = np.nanmean(block, axis=1) if np.isnan(block).any() else block.mean(axis=1)
        return np.asarray(means, dtype=np.float64)

    def _advance(self, values: FloatArray, buckets: int) -> None:
        if buckets < self._done or (
            self._done and self._means(values, self._done)[-1] != self._check
        ):
            self._reset()
        if buckets <= self._done:
            return
        means = self._means(values, buckets)
        a, b, g, p = self.alpha, self.beta, self.gamma, self.period
        for i in range(self._done, buckets):
            x = float(means[i])
            if i == 0:
                self._level = x if np.isfinite(x) else 0.0
            elif np.isfinite(x):
                s = self._season[i % p]
                prev = self._level
                self._level = a * (x - s) + (1 - a) * (prev + self._trend)
                self._trend = b * (self._level - prev) + (1 - b) * self._trend
                self._season[i % p] = g * (x - self._level) + (1 - g) * s
            one = self._level + self._trend + self._season[(i + 1) % p]
            two = self._level + 2 * self._trend + self._season[(i + 2) % p]
            self._ahead.append((one, two))
        self._done = buckets
        self._check = float(means[-1])

    def point(self, values: FloatArray, origins: IntArray) -> FloatArray:
        buckets = (origins + 1) // self.bucket
        self._advance(values, int(buckets.max()))
        out = np.empty(len(origins))
        for k, (o, done) in enumerate(zip(origins, buckets, strict=True)):
            if done < 1:
                out[k] = values[o]
            else:
                one, two = self._ahead[done - 1]
                out[k] = max(one, two, 0.0)
        return out
