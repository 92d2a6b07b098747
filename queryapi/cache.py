"""Range query results kept between a dashboard's refreshes, as the results caches in front
of Cortex and Thanos keep them.

A dashboard over "the last hour" refreshed every 30 s asks the same expression over a window
moved by 30 s. The value at a step depends only on samples at or before it, so once every
sample up to a step has arrived its value is final. The steps older than ``freshness`` are
kept (as the JSON text they are answered with), and a later query with the same expression,
step and step phase evaluates only the steps after the kept ones.

Invariants:

* Only steps at or before ``now - freshness`` are kept (Cortex's ``max_freshness``): samples
  arrive a little after their timestamps.
* Samples written into the kept past (a history back-fill writes it at start-up) make the
  kept steps at and after their oldest timestamp no longer final (:meth:`RangeCache.written`,
  called by the store after each append). That holds for an answer being evaluated while
  they are written too: it keeps no step at or after them.
* Expressions whose value at a step depends on more than the samples up to it are never
  kept: ``@`` modifiers, negative offsets, the query's bounds (``start()``, ``end()``,
  ``range()``, ``step()``) and ``forecast()`` (its model is configuration, not data).
* An answer that raised warnings or infos is not kept: they describe the steps evaluated.
* Everything is dropped when the store forgets series (:attr:`tsdb.Store.generation`).
* The entries hold at most ``max_bytes`` (roughly counted); the least recently used go first.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import numpy as np
import promql_parser as pp

from promql import Engine, parse
from promql.context import Annotations
from promql.shared import SharedResults
from queryapi.encode import EncodedMatrix, Part, assemble, encode_matrix

Key = tuple[str, int, int]
Share = Callable[[int, int, int], SharedResults | None]
"""The shared values of a round of range queries over ``(start, end, step)``."""
# forecast(): its model is configuration, not data; the others read the query's bounds.
_UNCACHEABLE_CALLS = frozenset({"forecast", "start", "end", "range", "step"})
# Writes into the past remembered for the answers being evaluated meanwhile; an answer that
# began before the oldest of them is not kept.
_WRITES_KEPT = 256


@dataclass(frozen=True)
class _Extent:
    """A key's answer: its steps up to ``final_ms`` are final."""

    matrix: EncodedMatrix
    final_ms: int
    generation: int
    nbytes: int


@functools.lru_cache(maxsize=4096)
def cacheable(text: str) -> bool:
    """Whether the value of ``text`` at a step depends only on samples up to that step
    (remembered per text: a dashboard asks the same texts at every refresh)."""
    ok = True

    def visit(node: Any) -> bool:
        nonlocal ok
        if getattr(node, "at", None) is not None:
            ok = False
        offset = getattr(node, "offset", None)
        if offset is not None and offset < timedelta(0):
            ok = False
        if isinstance(node, pp.Call) and node.func.name in _UNCACHEABLE_CALLS:
            ok = False
        return ok

    pp.walk(parse(text), visit)
    return ok


class RangeCache:
    """Kept steps of range queries; :meth:`evaluate` answers from them and the engine.

    ``round_ms`` is how long a round of shared values (:mod:`queryapi.rounds`) lasts: a query
    that joins one uses values read up to that long before it. :attr:`writes` counts the
    writes into the past, after which a new round must begin.
    """

    def __init__(
        self,
        max_bytes: int,
        freshness_ms: int,
        generation: Callable[[], int],
        round_ms: int = 0,
    ) -> None:
        self.max_bytes = max_bytes
        self.freshness_ms = freshness_ms
        self.round_ms = round_ms
        self._generation = generation
        self._entries: OrderedDict[Key, _Extent] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        # The newest step kept, being evaluated to be kept, or that a query joining a round
        # begun may keep: a write after it changes none of them.
        self._horizon_ms = -(1 << 62)
        # (number, oldest timestamp) of the last writes into the past, and their count.
        self._writes: deque[tuple[int, int]] = deque(maxlen=_WRITES_KEPT)
        self.writes = 0
        self.hits = 0
        self.misses = 0

    def evaluate(
        self,
        engine: Engine,
        text: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        now_ms: int,
        share: Share | None = None,
    ) -> tuple[EncodedMatrix, Annotations]:
        """The series of ``text`` over ``[start_ms, end_ms]`` every ``step_ms``, sorted by
        labels, and the annotations of the steps evaluated now. ``share`` gives the
        subexpression values of other queries over the steps evaluated now, if any."""
        key = (text, step_ms, start_ms % step_ms)
        keep = self.max_bytes > 0 and cacheable(text)
        final = start_ms + (min(end_ms, now_ms - self.freshness_ms) - start_ms) // step_ms * step_ms
        keep = keep and final >= start_ms
        generation = self._generation()
        seen = self._begin(final) if keep else 0
        extent = self._get(key, generation) if keep else None
        kept: Part | None = None
        begin = start_ms
        if extent is not None and extent.matrix.first_ms <= start_ms <= extent.final_ms:
            matrix = extent.matrix
            last = min(end_ms, extent.final_ms)
            rows = np.arange(len(matrix.labels), dtype=np.int64)
            kept = Part(matrix, matrix.step_of(start_ms), matrix.step_of(last), rows)
            begin = last + step_ms
        annotations = Annotations()
        fresh: EncodedMatrix | None = None
        if begin <= end_ms:
            shared = share(begin, end_ms, step_ms) if share is not None else None
            result = engine.range(text, begin, end_ms, step_ms, shared)
            annotations = result.annotations
            columns = result.range_columns()
            assert columns is not None
            fresh = encode_matrix(columns, step_ms)
        answer = _joined(kept, fresh)
        if keep and not annotations.warnings and not annotations.infos:
            size = answer.nbytes + len(text)
            self._put(key, _Extent(answer, final, generation, size), seen)
        return answer, annotations

    def written(self, oldest_ms: int) -> None:
        """Samples from ``oldest_ms`` on were just written: kept steps at or after it are
        evaluated again when asked."""
        if oldest_ms > self._horizon_ms:
            return  # the present, as scrapes write it: no kept step reads it
        with self._lock:
            self.writes += 1
            self._writes.append((self.writes, oldest_ms))
            for key, extent in list(self._entries.items()):
                if extent.final_ms >= oldest_ms:
                    cut = _before(extent, oldest_ms)
                    if cut is None:
                        del self._entries[key]
                        self._bytes -= extent.nbytes
                    else:
                        self._entries[key] = cut

    def _begin(self, final_ms: int) -> int:
        """Note that steps up to ``final_ms`` are being evaluated to be kept; the number of
        writes into the past so far."""
        with self._lock:
            self._horizon_ms = max(self._horizon_ms, final_ms + self.round_ms)
            return self.writes

    def _get(self, key: Key, generation: int) -> _Extent | None:
        with self._lock:
            extent = self._entries.get(key)
            if extent is None or extent.generation != generation:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return extent

    def _put(self, key: Key, extent: _Extent, seen: int) -> None:
        """Keep ``extent``, evaluated after ``seen`` writes into the past, without the steps
        that later ones changed."""
        if extent.nbytes > self.max_bytes:
            return
        with self._lock:
            if self.writes > seen:
                if self.writes - seen > len(self._writes):
                    return  # more writes than remembered: which steps they changed is lost
                oldest = min(ts for number, ts in self._writes if number > seen)
                if extent.final_ms >= oldest:
                    cut = _before(extent, oldest)
                    if cut is None:
                        return
                    extent = cut
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[key] = extent
            self._bytes += extent.nbytes
            while self._bytes > self.max_bytes:
                _, gone = self._entries.popitem(last=False)
                self._bytes -= gone.nbytes

    @property
    def nbytes(self) -> int:
        """What the entries hold, roughly."""
        return self._bytes


def _before(extent: _Extent, oldest_ms: int) -> _Extent | None:
    """``extent`` final only up to its last step before ``oldest_ms`` (None: no step is)."""
    first, step = extent.matrix.first_ms, extent.matrix.step_ms
    final = first + (oldest_ms - 1 - first) // step * step
    return replace(extent, final_ms=final) if final >= first else None


def _joined(kept: Part | None, fresh: EncodedMatrix | None) -> EncodedMatrix:
    """Kept steps followed by fresh ones, series sorted by labels as in both."""
    if kept is None:
        assert fresh is not None
        return fresh
    matrix = kept.matrix
    whole = kept.first == 0 and kept.last == matrix.steps - 1
    if fresh is None or not fresh.labels:
        return matrix if whole else assemble(matrix.labels, matrix.heads, [kept])
    ahead = Part(fresh, 0, fresh.steps - 1, np.arange(len(fresh.labels), dtype=np.int64))
    if matrix.labels == fresh.labels:
        return assemble(matrix.labels, matrix.heads, [kept, ahead])
    # Series came or went: the union, each series from the parts that have it.
    older = {lb: i for i, lb in enumerate(matrix.labels)}
    newer = {lb: i for i, lb in enumerate(fresh.labels)}
    labels = sorted(older.keys() | newer.keys())
    heads = [matrix.heads[older[lb]] if lb in older else fresh.heads[newer[lb]] for lb in labels]
    kept_rows = np.array([older.get(lb, -1) for lb in labels], dtype=np.int64)
    fresh_rows = np.array([newer.get(lb, -1) for lb in labels], dtype=np.int64)
    return assemble(
        labels,
        heads,
        [
            Part(matrix, kept.first, kept.last, kept_rows),
            Part(fresh, 0, fresh.steps - 1, fresh_rows),
        ],
    )
