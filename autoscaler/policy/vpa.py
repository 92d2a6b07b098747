"""The VPA's recommendation bounds and its updater's rule (default flags).

The VPA recommender turns a decaying usage histogram into a target (P90 × 1.15) and bounds
(P50 and P95 × 1.15) that widen while it has little history: lower × (1 + 0.001/c)^-2, upper
× (1 + 1/c), with c the confidence in days. The updater leaves a pod alone while its request
is inside the bounds, unless the pod has lived 12 h and the target differs by at least 10 %,
or the container was OOM-killed within 10 minutes of its start; it evicts the pod otherwise,
and the new pod gets the target.

foresight keeps a :class:`ShadowVpa` per CPU container, the request the VPA would hold on the
same usage, to know how often the VPA would have throttled it (see
:mod:`autoscaler.policy.sizer`); the backtest's VPA reference decides with the same rule.
"""

from __future__ import annotations

import math

from autoscaler.policy.settings import VerticalSettings
from autoscaler.policy.vertical import DAY, HOUR, DecayingHistogram, histogram_percentiles

__all__ = [
    "CONFIDENCE_LOWER",
    "CONFIDENCE_UPPER",
    "MIN_CHANGE",
    "POD_LIFETIME_THRESHOLD",
    "QUICK_OOM",
    "UPDATER_EVERY",
    "ShadowVpa",
    "confidence_days",
    "recommendation",
    "updater_evicts",
]

CONFIDENCE_UPPER = (1.0, 1.0)  # (multiplier, exponent): upper × (1 + 1/confidence)
CONFIDENCE_LOWER = (0.001, -2.0)  # lower × (1 + 0.001/confidence)^-2
MIN_CHANGE = 0.1  # updater: relative change that justifies evicting an in-range pod
POD_LIFETIME_THRESHOLD = 12 * HOUR  # updater: in-range pods younger than this are kept
QUICK_OOM = 600.0  # updater: an OOM this soon after the container started is urgent
UPDATER_EVERY = 60.0  # the updater's loop period (--updater-interval)


def confidence_days(first: float | None, last: float | None) -> float:
    """The recommender's confidence: days between the first and the last sample.

    The recommender takes min(days of history, samples / 1,440), assuming one sample a
    minute as metrics-server gives; a series sampled more sparsely stands for the same
    minutes of a running container, so its span in days is the confidence.
    """
    if first is None or last is None:
        return 0.0
    return (last - first) / DAY


def recommendation(
    histogram: DecayingHistogram, settings: VerticalSettings, confidence: float
) -> tuple[float, float, float]:
    """(lower, target, upper) of the recommender for ``histogram`` at ``confidence`` days."""
    m = settings.margin
    low, mid, high = histogram_percentiles(histogram, settings)
    lower, target, upper = low * m, mid * m, high * m
    if confidence <= 0:
        return lower, target, math.inf
    k, e = CONFIDENCE_LOWER
    lower *= (1 + k / confidence) ** e
    k, e = CONFIDENCE_UPPER
    upper *= (1 + k / confidence) ** e
    return lower, target, upper


def updater_evicts(
    request: float,
    bounds: tuple[float, float, float],
    pod_age: float,
    quick_oom: bool = False,
) -> bool:
    """Whether the updater evicts a pod holding ``request`` to give it the target."""
    lower, target, upper = bounds
    if target <= 0:
        return False
    if request < lower or request > upper:
        return True
    if quick_oom and target != request:
        return True
    return pod_age >= POD_LIFETIME_THRESHOLD and abs(target - request) >= MIN_CHANGE * request


class ShadowVpa:
    """The request the VPA would hold for one container resource, on ``histogram``.

    It starts holding at its first :meth:`step` with the recommender's target, and the
    updater's rule runs at most every :data:`UPDATER_EVERY` seconds after that.
    """

    def __init__(self, histogram: DecayingHistogram, settings: VerticalSettings) -> None:
        self.histogram = histogram
        self.settings = settings
        self.request: float | None = None
        self._first_sample: float | None = None
        self._last_sample: float | None = None
        self._pod_started = -math.inf
        self._checked = -math.inf

    def saw(self, at: float) -> None:
        """A sample went into the histogram at ``at`` (the confidence grows with the span)."""
        if self._first_sample is None:
            self._first_sample = at
        self._last_sample = at

    def step(self, at: float) -> float | None:
        """The request held at ``at`` (None before the histogram has any weight)."""
        if at - self._checked < UPDATER_EVERY and self.request is not None:
            return self.request
        self._checked = at
        if self.histogram.total_weight() <= 0:
            return self.request
        bounds = recommendation(
            self.histogram, self.settings, confidence_days(self._first_sample, self._last_sample)
        )
        held = self.request
        if bounds[1] > 0 and (held is None or updater_evicts(held, bounds, at - self._pod_started)):
            self.request, self._pod_started = bounds[1], at
        return self.request
