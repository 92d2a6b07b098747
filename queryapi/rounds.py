"""Subexpression values shared by the queries of one dashboard refresh.

Grafana refreshes a dashboard's panels together, at one evaluation time, and their queries
repeat themselves (the join of pods to their workloads, the nodes' info...). The engine
shares subexpression values between queries given one
:class:`~promql.shared.SharedResults`; here a round is the instant queries at one time, or
the range queries over one range and step, that arrive within ``seconds`` of its first,
while the store forgets no series. They see the store as the first of them did, as if the
refresh were one query. Values are never modified after they are made, so the query threads
read them together. A round keeps at most ``max_bytes`` of values: a range round over many
steps makes large ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from promql import Engine
from promql.shared import SharedResults

_ROUNDS_KEPT = 16


class SharedRounds:
    """The rounds under way; :meth:`for_time` gives the one an instant query joins."""

    def __init__(
        self,
        engine: Engine,
        seconds: float,
        generation: Callable[[], int],
        max_bytes: int | None = None,
    ) -> None:
        self.engine = engine
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._generation = generation
        self._rounds: dict[tuple[int, int, int, int], tuple[float, SharedResults]] = {}
        self._lock = threading.Lock()

    def for_time(self, at_ms: int, now_s: float) -> SharedResults | None:
        """The round of instant queries at ``at_ms`` that began less than ``seconds``
        before ``now_s``, begun now if there is none; None when sharing is off."""
        return self.for_range(at_ms, at_ms, 0, now_s)

    def for_range(
        self, start_ms: int, end_ms: int, step_ms: int, now_s: float
    ) -> SharedResults | None:
        """:meth:`for_time` for range queries over ``[start_ms, end_ms]`` every
        ``step_ms`` (0: instant queries)."""
        if self.seconds <= 0:
            return None
        key = (start_ms, end_ms, step_ms, self._generation())
        with self._lock:
            found = self._rounds.get(key)
            if found is not None and now_s - found[0] < self.seconds:
                return found[1]
            # Rounds that ended hold memory only: let them go when a new one begins.
            self._rounds = {k: v for k, v in self._rounds.items() if now_s - v[0] < self.seconds}
            if len(self._rounds) >= _ROUNDS_KEPT:
                del self._rounds[min(self._rounds, key=lambda k: self._rounds[k][0])]
            shared = self.engine.shared(max_bytes=self.max_bytes)
            self._rounds[key] = (now_s, shared)
            return shared
