"""How many shards a queue wants: enough senders to keep up with what comes in and to work
off what is pending within a minute, between ``min_shards`` and ``max_shards``.

Like Prometheus' queue manager, it measures what one shard delivers per second of sending
and changes the count only when it is off by more than :data:`TOLERANCE` (each change drains
the queues first, so flapping costs throughput). Pure: rates in, a count out.
"""

from __future__ import annotations

import math

__all__ = ["CATCH_UP_SECONDS", "TOLERANCE", "desired_shards"]

CATCH_UP_SECONDS = 60.0
TOLERANCE = 0.3


def desired_shards(
    current: int,
    min_shards: int,
    max_shards: int,
    pending: int,
    in_rate: float,
    per_shard_rate: float | None,
) -> int:
    """The shard count to run: ``in_rate`` samples/s arrive, ``pending`` wait, one shard
    delivers ``per_shard_rate`` samples/s (None: not measured yet, keep ``current``)."""
    bounded = min(max(current, min_shards), max_shards)
    if per_shard_rate is None or per_shard_rate <= 0:
        return bounded
    needed = max(in_rate, 0.0) + pending / CATCH_UP_SECONDS
    want = min(max(math.ceil(needed / per_shard_rate), min_shards), max_shards)
    if want != bounded and abs(want - current) / max(current, 1) <= TOLERANCE:
        return bounded
    return want
