"""Range query results kept between a dashboard's refreshes, as the results caches in front
of Cortex and Thanos keep them.

A dashboard over "the last hour" refreshed every 30 s asks the same expression over a window
moved by 30 s. The value at a step depends only on samples at or before it, so once every
sample up to a step has arrived its value is final. The steps older than ``freshness`` are
kept (as the JSON text they are answered with), and a later query with the same expression,
step and step phase evaluates only the steps after the kept ones.

Invariants:

* Only steps at or before ``now - freshness`` are kept: a sample that arrives later than that
  after its own timestamp is not seen by kept steps (Cortex's ``max_freshness``).
* Expressions whose value at a step depends on more than the samples up to it are never
  kept: ``@`` modifiers, negative offsets, the query's bounds (``start()``, ``end()``,
  ``range()``, ``step()``) and ``forecast()`` (its model is configuration, not data).
* An answer that raised warnings or infos is not kept: they describe the steps evaluated.
* Everything is dropped when the store forgets series (:attr:`tsdb.Store.generation`).
* The entries hold at most ``max_bytes`` (roughly counted); the least recently used go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import promql_parser as pp

from promql import Engine, parse
from promql.context import Annotations
from queryapi.encode import EncodedSeries, encoded_matrix

Key = tuple[str, int, int]
# forecast(): its model is configuration, not data; the others read the query's bounds.
_UNCACHEABLE_CALLS = frozenset({"forecast", "start", "end", "range", "step"})


@dataclass(frozen=True)
class _Extent:
    """Final steps ``[first_ms, last_ms]`` of one key, series sorted by labels."""

    first_ms: int
    last_ms: int
    series: list[EncodedSeries]
    generation: int
    nbytes: int


def cacheable(text: str) -> bool:
    """Whether the value of ``text`` at a step depends only on samples up to that step."""
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
    """Kept steps of range queries; :meth:`evaluate` answers from them and the engine."""

    def __init__(self, max_bytes: int, freshness_ms: int, generation: Callable[[], int]) -> None:
        self.max_bytes = max_bytes
        self.freshness_ms = freshness_ms
        self._generation = generation
        self._entries: OrderedDict[Key, _Extent] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def evaluate(
        self, engine: Engine, text: str, start_ms: int, end_ms: int, step_ms: int, now_ms: int
    ) -> tuple[list[EncodedSeries], Annotations]:
        """The series of ``text`` over ``[start_ms, end_ms]`` every ``step_ms``, sorted by
        labels, and the annotations of the steps evaluated now."""
        key = (text, step_ms, start_ms % step_ms)
        keep = self.max_bytes > 0 and cacheable(text)
        generation = self._generation()
        extent = self._get(key, generation) if keep else None
        kept: list[EncodedSeries] = []
        begin = start_ms
        if extent is not None and extent.first_ms <= start_ms <= extent.last_ms:
            last = min(end_ms, extent.last_ms)
            kept = [w for s in extent.series if (w := s.window(start_ms, last)) is not None]
            begin = last + step_ms
        annotations = Annotations()
        fresh: list[EncodedSeries] = []
        if begin <= end_ms:
            result = engine.range(text, begin, end_ms, step_ms)
            annotations = result.annotations
            fresh = encoded_matrix(result.series)
        series = _merged(kept, fresh)
        final = start_ms + (min(end_ms, now_ms - self.freshness_ms) - start_ms) // step_ms * step_ms
        if keep and final >= start_ms and not annotations.warnings and not annotations.infos:
            window = [w for s in series if (w := s.window(start_ms, final)) is not None]
            size = sum(s.nbytes for s in window) + len(text)
            self._put(key, _Extent(start_ms, final, window, generation, size))
        return series, annotations

    def _get(self, key: Key, generation: int) -> _Extent | None:
        with self._lock:
            extent = self._entries.get(key)
            if extent is None or extent.generation != generation:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return extent

    def _put(self, key: Key, extent: _Extent) -> None:
        if extent.nbytes > self.max_bytes:
            return
        with self._lock:
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


def _merged(kept: list[EncodedSeries], fresh: list[EncodedSeries]) -> list[EncodedSeries]:
    """Kept points followed by fresh ones, per series; sorted by labels as both inputs are."""
    if not kept:
        return fresh
    if not fresh:
        return kept
    if len(kept) == len(fresh) and all(
        k.labels == f.labels for k, f in zip(kept, fresh, strict=True)
    ):
        return [k.joined(f) for k, f in zip(kept, fresh, strict=True)]
    by_labels = {s.labels: s for s in kept}
    for s in fresh:
        before = by_labels.get(s.labels)
        by_labels[s.labels] = s if before is None else before.joined(s)
    return sorted(by_labels.values(), key=lambda s: s.labels)
