"""A container resource's request over time: usage in, :class:`VerticalDecision` out.

Keeps what :func:`~autoscaler.policy.vertical.recommend_request` needs between decisions:
the decaying histogram, the recent usage for :func:`~autoscaler.policy.vertical.forecast_need`
(trimmed to the longest window it reads) and the usage at the latest OOM kill.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from autoscaler.policy.settings import VerticalSettings
from autoscaler.policy.vertical import (
    DecayingHistogram,
    VerticalDecision,
    forecast_need,
    recommend_request,
)

__all__ = ["ContainerSizer"]

HOUR = 3600.0


class ContainerSizer:
    """Sizes one resource (``cpu`` or ``memory``) of one container."""

    def __init__(self, resource: str, settings: VerticalSettings, first_bucket: float) -> None:
        self.resource = resource
        self.settings = settings
        self.histogram = DecayingHistogram(settings.half_life_hours * HOUR, first_bucket)
        self._recent: deque[tuple[float, float]] = deque()
        self._keep = max(settings.cpu_recent_hours * HOUR, settings.memory_peak_days * 86_400)
        self._oom_used: float | None = None

    def observe(self, at: float, used: float) -> None:
        """Usage sampled at ``at``."""
        self._recent.append((at, used))
        while self._recent and self._recent[0][0] < at - self._keep:
            self._recent.popleft()
        self.histogram.add(used, at)

    def oom(self, used: float) -> None:
        """An OOM kill with ``used`` in use (the limit, usually)."""
        self._oom_used = max(used, self._oom_used or 0.0)

    @property
    def samples(self) -> int:
        """Samples in the recent window."""
        return len(self._recent)

    def decide(
        self,
        at: float,
        current: float,
        min_allowed: float = 0.0,
        max_allowed: float = math.inf,
    ) -> VerticalDecision:
        """The request for ``current``; consumes a pending OOM kill."""
        times = np.fromiter((t for t, _ in self._recent), np.float64, len(self._recent))
        usage = np.fromiter((u for _, u in self._recent), np.float64, len(self._recent))
        need = forecast_need(times, usage, at, self.resource, self.settings)
        decision = recommend_request(
            self.histogram,
            current,
            self.settings,
            forecast=need,
            oom_used=self._oom_used,
            min_allowed=min_allowed,
            max_allowed=max_allowed,
        )
        self._oom_used = None
        return decision
