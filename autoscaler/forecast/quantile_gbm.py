"""``quantile_gbm``: gradient-boosted quantile regression of the peak over the horizon.

Boosted trees at a high quantile under-cover when few training rows lie beyond it, so the
model is fitted on all but the most recent day and its answers are then scaled so that they
cover the chosen quantile of that day (split conformal calibration). One OpenMP thread is
used: a controller evaluates many small batches, where thread start-up costs more than it
saves.

At the quantile capacity must cover (0.997) that calibration is too thin: the model
under-covers and is not the default (see :mod:`autoscaler.forecast` for the figures).
scikit-learn is imported at the first fit: registering the model by name must not cost
every command that lists the models (``foresight crd``, ``rules test``) seconds of import.

The model learns the log ratio of the coming peak to the current load from
:mod:`~autoscaler.forecast.features`; being scale-free, one model could also be fitted over
many normalised series at once.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from autoscaler.forecast.base import FloatArray, ForecastError, Horizon, IntArray, Series
from autoscaler.forecast.features import peak_features
from autoscaler.forecast.peaks import future_peaks, level_scale, ratio_quantile

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor

LEARNED_EXTRA = "pip install 'foresight[learned]' (image: make image-demo, or EXTRAS=[learned])"


def available() -> bool:
    """Whether scikit-learn, an optional extra, is installed: the container image leaves it
    out, and then ``quantile_gbm`` cannot be chosen."""
    return importlib.util.find_spec("sklearn") is not None


__all__ = ["QuantileGbmForecaster"]


class QuantileGbmForecaster:
    """HistGradientBoostingRegressor with quantile loss on load features."""

    name = "quantile_gbm"

    def __init__(
        self,
        horizon: Horizon,
        quantile: float,
        quiet_offset: float = 0.2,
        history_days: float = 7.0,
        max_rows: int = 4000,
        max_iter: int = 60,
        seed: int = 0,
    ) -> None:
        if not 0 < quantile < 1:
            raise ForecastError(f"{self.name}: quantile must be in (0, 1), got {quantile}")
        self.horizon = horizon
        self.quantile = quantile
        self.quiet_offset = quiet_offset
        self.history_days = history_days
        self.max_rows = max_rows
        self.max_iter = max_iter
        self.seed = seed
        self.offset = 0.0
        self.multiplier = 1.0
        self._model: HistGradientBoostingRegressor | None = None

    def _features(self, history: Series, origins: IntArray) -> FloatArray:
        return peak_features(
            history.values,
            origins,
            history.start_time,
            history.step_seconds,
            self.horizon.steps,
            self.offset,
        )

    def fit(self, history: Series) -> None:
        values = history.values
        steps = self.horizon.steps
        self.offset = self.quiet_offset * level_scale(values, round(86_400 / history.step_seconds))
        last = len(values) - 1 - steps
        first = max(0, last - round(self.history_days * 86_400 / history.step_seconds))
        if last - first < 100:
            raise ForecastError(f"{self.name}: needs more history to fit ({len(values)} steps)")
        day = round(86_400 / history.step_seconds)
        split = last - day if last - day - first >= 1000 else last + 1
        rng = np.random.default_rng(self.seed)
        count = min(self.max_rows, split - first)
        origins = np.sort(rng.choice(np.arange(first, split), size=count, replace=False))
        origins = origins.astype(np.int64)
        all_peaks = future_peaks(values, steps)
        peaks = all_peaks[origins]
        level = np.nan_to_num(values[origins], nan=0.0)
        keep = np.isfinite(peaks)
        target = np.log((peaks[keep] + self.offset) / (level[keep] + self.offset))
        from sklearn.ensemble import HistGradientBoostingRegressor  # noqa: PLC0415

        model = HistGradientBoostingRegressor(
            loss="quantile",
            quantile=self.quantile,
            max_iter=self.max_iter,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            learning_rate=0.1,
            random_state=self.seed,
        )
        with threadpool_limits(1):
            model.fit(self._features(history, origins[keep]), target)
        self._model = model
        self.multiplier = 1.0
        if split <= last:
            held = np.arange(split, last + 1, max(1, (last - split) // 1500), dtype=np.int64)
            predicted = self.backtest(history, held)
            ratio = ratio_quantile(all_peaks[held], predicted, self.offset, self.quantile)
            self.multiplier = max(1.0, ratio)

    def predict(self, history: Series) -> float:
        origin = np.array([len(history.values) - 1], dtype=np.int64)
        return float(self.backtest(history, origin)[0])

    def backtest(self, history: Series, origins: IntArray) -> FloatArray:
        if self._model is None:
            raise ForecastError(f"{self.name}: predict before fit")
        with threadpool_limits(1):
            ratio = np.exp(self._model.predict(self._features(history, origins)))
        level = np.nan_to_num(history.values[origins], nan=0.0)
        peak = (level + self.offset) * ratio * self.multiplier - self.offset
        return np.asarray(np.maximum(peak, 0.0))
