"""Keeping a forecast current between model evaluations.

Evaluating a learned model costs about a millisecond; a controller decides every 15 s for
many workloads. The model's answer is kept as headroom relative to the load it was made at,
and applied to the live load at every decision until the next evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autoscaler.forecast.base import Forecaster, Series
from autoscaler.forecast.settings import ForecastSettings

__all__ = ["LiveForecast", "PeakForecast"]


@dataclass(frozen=True)
class PeakForecast:
    """The forecast peak over the horizon, and when and at what load the model made it."""

    peak: float
    made_at: float
    level: float


class LiveForecast:
    """Re-evaluates ``forecaster`` every ``every_seconds`` and scales it to live load between."""

    def __init__(
        self, forecaster: Forecaster, every_seconds: float, cap_seconds: float | None = None
    ) -> None:
        self.forecaster = forecaster
        self.every_seconds = every_seconds
        self.cap_seconds = cap_seconds
        self.weekly = True
        self.latest: PeakForecast | None = None
        self._ratio = 1.0
        self._cap = math.inf

    @classmethod
    def from_settings(cls, forecaster: Forecaster, settings: ForecastSettings) -> LiveForecast:
        """``forecaster`` kept current as the settings say (``predict_every_seconds``, and
        ``peak_cap_days``: 0 for no cap)."""
        cap = settings.peak_cap_days
        return cls(
            forecaster,
            settings.predict_every_seconds,
            cap_seconds=cap * 86_400 if cap > 0 else None,
        )

    def _recent_max(self, history: Series) -> float:
        if self.cap_seconds is None:
            return math.inf
        window = history.values[-max(1, round(self.cap_seconds / history.step_seconds)) :]
        finite = window[np.isfinite(window)]
        return float(finite.max()) if len(finite) else math.inf

    def peak(self, history: Series, level: float) -> float:
        """Forecast peak over the horizon after ``history``; ``level`` is the load now.

        With ``cap_seconds``, the forecast never exceeds the largest load of that recent
        window (or the current load, if higher): headroom learned as a ratio to the level
        would otherwise ask, on a bursty workload at a high level, for more than any burst
        ever needed. Growth past the old peak is met by the reactive floor.
        """
        now = history.now
        offset = self.forecaster.offset
        if self.latest is None or now - self.latest.made_at >= self.every_seconds:
            peak = self.forecaster.predict(history)
            self.latest = PeakForecast(peak=peak, made_at=now, level=level)
            self._ratio = (peak + offset) / (level + offset) if level + offset > 0 else 1.0
            self._cap = self._recent_max(history)
        else:
            peak = max(0.0, (level + offset) * self._ratio - offset)
        return min(peak, max(self._cap, level))

    def invalidate(self) -> None:
        """Forget the kept answer (after a re-fit)."""
        self.latest = None
