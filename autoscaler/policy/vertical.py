"""The vertical policy: container requests (and optionally limits) from usage history.

The base is the VPA recommender's: usage goes into a histogram whose weights decay with a
half-life, the request is a percentile of it times a margin, with lower and upper bounds at
two other percentiles. foresight adds what the histogram cannot see: a forecast of the usage
until the next decision, and a fast path after an OOM kill. For memory the forecast
(:func:`forecast_need`, the peak of the last week) floors the request and lets the histogram
target carry a smaller margin. For CPU, several forecasts of the coming hour
(:func:`cpu_forecasts`) are calibrated on the container's own recent usage
(:func:`calibrated_target`): each gets the margin that would have left usage above it as
often as the risk allows (by default, as often as the histogram target was exceeded), and the
one that would have left the least slack sets the request, as long as the calibrated targets
of the last days left less slack on the usage that followed them than the histogram target
did; otherwise the histogram target (the VPA's) sets it, per container, until they do again.
A resize happens only when the target moves by more than the hysteresis, or when the current
request leaves the bounds.

The VPA holds a request until it leaves wide bounds or a pod has lived 12 h, so its margin
must cover a day of drift; deciding every hour on a forecast of the next one needs less.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from autoscaler.policy.settings import VerticalSettings

FloatArray = NDArray[np.float64]

HOUR = 3600.0
DAY = 86_400.0
# What each of :func:`cpu_forecasts`' values is, in order.
CPU_FORECASTS = (
    "recent",
    "yesterday",
    "histogram",
    "recent_or_yesterday",
    "any",
    "daily",
    "recent_or_daily",
)

__all__ = [
    "DecayingHistogram",
    "VerticalDecision",
    "VerticalReason",
    "calibrated_target",
    "cpu_forecasts",
    "cpu_need",
    "forecast_need",
    "histogram_percentiles",
    "oom_bump",
    "recommend_request",
]


class DecayingHistogram:
    """Exponential buckets of usage whose weights halve every ``half_life`` seconds."""

    def __init__(
        self, half_life_seconds: float, first_bucket: float, ratio: float = 1.05, buckets: int = 400
    ) -> None:
        if first_bucket <= 0 or ratio <= 1:
            raise ValueError("histogram needs first_bucket > 0 and ratio > 1")
        self.half_life = half_life_seconds
        self.first = first_bucket
        self.ratio = ratio
        self.weights = np.zeros(buckets)
        self.reference: float | None = None

    def _bucket(self, value: float) -> int:
        if value <= self.first:
            return 0
        index = int(math.log(value / self.first, self.ratio)) + 1
        return min(index, len(self.weights) - 1)

    def upper_edge(self, index: int) -> float:
        """The largest value bucket ``index`` holds."""
        return float(self.first * self.ratio**index)

    def add(self, value: float, at: float, weight: float = 1.0) -> None:
        """Add a usage sample taken at ``at`` (unix seconds)."""
        if self.reference is None:
            self.reference = at
        # Newer samples weigh more instead of older ones decaying, which needs no sweep; the
        # reference moves when the factor grows large, to keep floats finite.
        exponent = (at - self.reference) / self.half_life
        if exponent > 50:
            self.weights *= 2.0**-exponent
            self.reference, exponent = at, 0.0
        self.weights[self._bucket(max(0.0, value))] += weight * 2.0**exponent

    def subtract(self, value: float, at: float, weight: float = 1.0) -> None:
        """Take back a sample added with the same ``value``, ``at`` and ``weight``.

        A memory peak of an aggregation window is replaced when a larger one arrives in it.
        """
        if self.reference is None:
            return
        index = self._bucket(max(0.0, value))
        exponent = (at - self.reference) / self.half_life
        self.weights[index] = max(0.0, self.weights[index] - weight * 2.0**exponent)

    def scale(self, factor: float) -> None:
        """Multiply every weight by ``factor`` (percentiles do not move)."""
        self.weights *= factor

    def total_weight(self) -> float:
        """Sum of the (relative) weights."""
        return float(self.weights.sum())

    def percentile(self, p: float) -> float:
        """Upper edge of the bucket where the cumulative weight reaches ``p`` (0 if empty)."""
        total = float(self.weights.sum())
        if total <= 0:
            return 0.0
        index = int(np.searchsorted(np.cumsum(self.weights), p * total))
        return self.upper_edge(min(index, len(self.weights) - 1))


class VerticalReason(enum.StrEnum):
    """Why the request is what it is."""

    TARGET = "histogram_target"
    FORECAST = "forecast_need"
    OOM = "oom_bump"
    WITHIN_HYSTERESIS = "within_hysteresis"
    MIN_ALLOWED = "min_allowed"
    MAX_ALLOWED = "max_allowed"
    NO_DATA = "fail_static_no_data"
    # The resource a horizontal metric divides by (see autoscaler.policy.joint):
    HORIZONTAL_OWNS = "horizontal_owns_resource"
    GROW_AT_MAX = "grow_at_max_replicas"
    SHRINK_AT_MIN = "shrink_at_min_replicas"


@dataclass(frozen=True)
class VerticalDecision:
    """Request (and limit, when limits are managed) for one container resource."""

    request: float
    limit: float | None
    reason: VerticalReason
    target: float
    lower: float
    upper: float
    resize: bool


def oom_bump(used: float, settings: VerticalSettings) -> float:
    """Memory after an OOM kill: max(used + 100 MiB, used × 1.2) by default."""
    return max(used + settings.oom_bump_bytes, used * settings.oom_bump_ratio)


def cpu_need(used_cores: float, throttled_cores: float | None) -> float:
    """CPU a container asked for: what it used plus the time it spent throttled.

    Usage alone cannot exceed the CPU limit, so a container held at its limit looks exactly
    as busy as the limit, and a request sized on usage never learns it needs more. cAdvisor's
    ``container_cpu_cfs_throttled_seconds_total`` counts, over the node's CPUs, the time its
    runnable threads waited for the next CFS period: its rate (in cores) is the demand the
    limit cut off. Without that counter (no limit, no cAdvisor), usage is all there is.
    """
    return used_cores + max(0.0, throttled_cores or 0.0)


def _window(times: FloatArray, usage: FloatArray, since: float, until: float) -> FloatArray:
    lo = int(np.searchsorted(times, since, side="left"))
    hi = int(np.searchsorted(times, until, side="right"))
    return usage[lo:hi]


def forecast_need(
    times: FloatArray, usage: FloatArray, now: float, resource: str, settings: VerticalSettings
) -> float | None:
    """Usage the request must cover until the next decision, from usage up to ``now``.

    CPU is compressible: running above the request throttles, it does not kill. The level of
    the coming hour is best told by the last hours, so the forecast is the
    ``cpu_peak_percentile`` of the last ``cpu_recent_hours``. Memory is not: every peak must
    fit, and a peak of the last ``memory_peak_days`` says more about tomorrow than a decayed
    histogram of daily peaks, so the forecast is that peak × ``memory_peak_margin``. None
    when there is no usage in the window.
    """
    if resource == "cpu":
        since = now - settings.cpu_recent_hours * 3600
    else:
        since = now - settings.memory_peak_days * 86_400
    window = _window(times, usage, since, now)
    if len(window) == 0:
        return None
    if resource == "cpu":
        return float(np.quantile(window, settings.cpu_peak_percentile))
    return float(window.max()) * settings.memory_peak_margin


def _shape(
    times: FloatArray, usage: FloatArray, start: float, span: float, q: float
) -> float | None:
    # The percentile of the hour from ``start`` over the mean of the ``span`` before it: how
    # that hour of the day stands against the hours that lead up to it.
    hour = _window(times, usage, start, start + HOUR)
    before = usage[int(np.searchsorted(times, start - span)) : int(np.searchsorted(times, start))]
    if len(hour) == 0 or len(before) == 0 or before.mean() <= 0:
        return None
    return float(np.quantile(hour, q)) / float(before.mean())


def cpu_forecasts(
    times: FloatArray,
    usage: FloatArray,
    now: float,
    histogram_level: float,
    settings: VerticalSettings,
) -> FloatArray | None:
    """Forecasts of the CPU of the coming hour, one per :data:`CPU_FORECASTS` name.

    ``recent``: the ``cpu_peak_percentile`` of the last ``cpu_recent_hours`` (the level now);
    ``yesterday``: that percentile of the same hour yesterday, scaled by today's mean over
    yesterday's in the ``cpu_recent_hours`` before it (a daily shape at today's level; the
    recent level without a day of history); ``histogram``: ``histogram_level``, the decaying
    histogram's target percentile (a day's level, as the VPA sees it); then the larger of the
    first two, and of all three; ``daily``: today's recent mean times the median of that
    shape (the hour's percentile over the mean of the hours before it) on each of the last
    ``cpu_calibration_days`` days, and the larger of it and ``recent``. A step in load just
    before the same hour yesterday counts twice in ``yesterday`` (once in yesterday's hour,
    once in today's level) for the ``cpu_recent_hours`` a day later; the median of the days
    outvotes a step that happened once. None when there is no usage in the recent hours.
    """
    span = settings.cpu_recent_hours * HOUR
    recent = _window(times, usage, now - span, now)
    if len(recent) == 0:
        return None
    q = settings.cpu_peak_percentile
    level = float(np.quantile(recent, q))
    mean = float(recent.mean())
    days = max(1, int(settings.cpu_calibration_days))
    shapes = [_shape(times, usage, now - d * DAY, span, q) for d in range(1, days + 1)]
    yesterday = level if shapes[0] is None else shapes[0] * mean
    known = [s for s in shapes if s is not None]
    daily = float(np.median(known)) * mean if known else level
    return np.array(
        [
            level,
            yesterday,
            histogram_level,
            max(level, yesterday),
            max(level, yesterday, histogram_level),
            daily,
            max(level, daily),
        ]
    )


def calibrated_target(
    forecasts: FloatArray, ratios: FloatArray, risk: float
) -> tuple[float, int] | None:
    """The request from the best-calibrated forecast, and that forecast's index.

    ``ratios`` holds, for each recent sample (row) and forecast (column), usage over the
    forecast that was in force for it. A forecast's margin is the ``1 − risk`` quantile of its
    ratios, so that the forecast × margin would have been exceeded by ``risk`` of the samples
    (split conformal prediction, with the recent samples as calibration set): of n ratios,
    the ⌈(n + 1)(1 − risk)⌉-th smallest, or the largest when that rank is past the end. Of
    those, the forecast whose request would have left the least mean slack,
    1 − mean(ratio) / margin, wins. None without a usable forecast (no samples, or usage all
    zero).
    """
    n = ratios.shape[0]
    if n == 0:
        return None
    level = min(1.0, max(0.0, (n + 1) * (1.0 - risk) / n))
    margins = np.quantile(ratios, level, axis=0, method="inverted_cdf")
    usable = (margins > 0) & np.isfinite(margins)
    if not usable.any():
        return None
    slack = np.full(len(margins), np.inf)
    slack[usable] = 1.0 - ratios[:, usable].mean(axis=0) / margins[usable]
    best = int(np.argmin(slack))
    return float(forecasts[best] * margins[best]), best


def histogram_percentiles(
    histogram: DecayingHistogram, settings: VerticalSettings
) -> tuple[float, float, float]:
    """The histogram's lower, target and upper percentiles, before the margin."""
    return (
        histogram.percentile(settings.lower_percentile),
        histogram.percentile(settings.target_percentile),
        histogram.percentile(settings.upper_percentile),
    )


def recommend_request(
    histogram: DecayingHistogram,
    current: float,
    settings: VerticalSettings,
    forecast: float | None = None,
    oom_used: float | None = None,
    min_allowed: float = 0.0,
    max_allowed: float = math.inf,
    calibrated: float | None = None,
) -> VerticalDecision:
    """The request for one resource; pure apart from reading ``histogram``.

    ``forecast`` is the usage the request must cover until the next decision (see
    :func:`forecast_need`); with it, the histogram target takes the smaller
    ``forecast_margin``, since rises in level are the forecast's job. ``calibrated`` is a
    forecast that already carries its margin (see :func:`calibrated_target`): it is the
    target, and the histogram gives only the bounds. ``oom_used`` is the usage at an OOM kill
    since the last decision.
    """
    if histogram.weights.sum() <= 0:
        return VerticalDecision(
            current, None, VerticalReason.NO_DATA, current, current, current, False
        )
    m = settings.margin
    low, p90, high = histogram_percentiles(histogram, settings)
    target, lower, upper = p90 * m, low * m, high * m
    reason = VerticalReason.TARGET
    if calibrated is not None:
        target, reason = calibrated, VerticalReason.FORECAST
    elif forecast is not None:
        target = p90 * settings.forecast_margin
        if forecast > target:
            target, reason = forecast, VerticalReason.FORECAST
    if oom_used is not None:
        bumped = oom_bump(oom_used, settings)
        if bumped > target:
            target, reason = bumped, VerticalReason.OOM
    upper = max(upper, target)
    lower = min(lower, target)
    if target < min_allowed:
        target, reason = min_allowed, VerticalReason.MIN_ALLOWED
    if target > max_allowed:
        target, reason = max_allowed, VerticalReason.MAX_ALLOWED
    request = target
    moved = current <= 0 or abs(target - current) > settings.hysteresis * current
    outside = current < lower or current > upper
    urgent = reason == VerticalReason.OOM
    resize = moved or outside or urgent
    if not resize:
        request, reason = current, VerticalReason.WITHIN_HYSTERESIS
    limit = request * settings.limit_ratio if settings.limit_ratio is not None else None
    return VerticalDecision(
        request, limit, reason, target, lower, upper, resize and request != current
    )
