"""How long to wait before a retry: one backoff schedule and one ``Retry-After`` parser.

:class:`Backoff` gives the pause before retry number ``attempt``: the initial pause doubled on
each attempt up to a maximum, stretched by an optional random share (jitter), and never
shorter than what the server asked in ``Retry-After``. :func:`retry_after_seconds` reads that
header (RFC 9110: delta-seconds or an HTTP date). Both are pure; callers sleep on their
injected Clock, and jitter comes from a random source they pass in, so tests are
deterministic.

This is ours rather than ``stamina`` or ``tenacity`` because the callers wait in three
different ways: a retry loop around one call (the Kubernetes API and Prometheus clients),
per-target state kept between collection cycles (the scraper leaves a failing target alone
until its pause is over), and retries scheduled on the entries of a persisted outbox
(notification delivery notes when each entry is due again). A retry-decorator library fits
only the first, so the callers share the schedule, not a loop.

Invariants of :meth:`Backoff.delay`: it is at most ``max_s`` unless the schedule lets a
longer ``Retry-After`` through (``cap_retry_after=False``); it is never below ``Retry-After``
(cut to ``max_s`` when capped); without jitter it never decreases as ``attempt`` grows.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = ["Backoff", "retry_after_seconds"]

_DELTA_SECONDS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``initial_s`` doubled per attempt, capped at ``max_s``.

    ``jitter`` is the largest random share added to a pause (0.2: up to 20 % longer, still
    within ``max_s``). ``attempts`` is how many retries a caller that counts them makes before
    giving up; ``None`` where the caller stops otherwise, or never. ``cap_retry_after=False``
    waits a server's ``Retry-After`` in full even past ``max_s``.
    """

    initial_s: float
    max_s: float
    jitter: float = 0.0
    attempts: int | None = None
    cap_retry_after: bool = True

    def __post_init__(self) -> None:
        for name in ("initial_s", "max_s", "jitter"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"Backoff.{name}: need a finite number >= 0, got {value!r}")
        if self.attempts is not None and self.attempts < 0:
            raise ValueError(f"Backoff.attempts: need >= 0 or None, got {self.attempts!r}")

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based); ``rand`` draws the
        jitter, a float in [0, 1)."""
        if attempt < 1:
            raise ValueError(f"Backoff.delay: attempts count from 1, got {attempt}")
        try:
            pause = math.ldexp(self.initial_s, attempt - 1)
        except OverflowError:  # a target failing for days: far past any cap
            pause = math.inf
        if self.jitter:
            pause *= 1 + self.jitter * rand()
        pause = min(pause, self.max_s)
        if retry_after is not None:
            pause = max(
                pause, min(retry_after, self.max_s) if self.cap_retry_after else retry_after
            )
        return pause

    def exhausted(self, attempt: int) -> bool:
        """Whether retry number ``attempt`` is past the ``attempts`` allowed."""
        return self.attempts is not None and attempt > self.attempts


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, ``now`` in unix seconds: a count of
    seconds, or an HTTP date (0 when it has passed); ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        # asctime dates and "-0000" carry no zone; HTTP dates are always UTC.
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
