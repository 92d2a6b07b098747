"""Copying one series' missing history from Prometheus into the store, a chunk at a time.

:meth:`HistoryCopier.plan` reads which timestamps of the window the store already holds (in
a worker thread: a week of samples) and returns the chunks of range queries that cover the
rest (:mod:`autoscaler.backfill.plan`); :meth:`HistoryCopier.copy` asks one chunk and appends
its samples. Memory stays bounded by one chunk's answer, whatever the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autoscaler.backfill.mapping import BackfillTarget
from autoscaler.backfill.plan import chunks, missing_spans
from collectors.prometheus_source import MAX_POINTS, PrometheusSource, PrometheusSourceError
from runtime.clock import Clock, in_thread
from tsdb import Store
from tsdb.labels import eq, make_labels

__all__ = ["Chunk", "HistoryCopier"]


@dataclass(frozen=True)
class Chunk:
    """One range query: grid points ``first_ms`` to ``last_ms`` every ``step_ms``."""

    first_ms: int
    last_ms: int
    step_ms: int

    @property
    def seconds(self) -> float:
        return (self.last_ms - self.first_ms + self.step_ms) / 1000


class HistoryCopier:
    """Fills a series' gaps in the last ``window_seconds`` on a ``step_seconds`` grid."""

    def __init__(
        self,
        source: PrometheusSource,
        store: Store,
        clock: Clock,
        *,
        step_seconds: float,
        window_seconds: float,
        max_gap_seconds: float,
        chunk_seconds: float,
        extra_matchers: str = "",
        rate_window_seconds: float = 120,
    ) -> None:
        self._source = source
        self._store = store
        self._clock = clock
        self._step_ms = max(1, round(step_seconds * 1000))
        self._window_ms = round(window_seconds * 1000)
        self._max_gap_ms = round(max_gap_seconds * 1000)
        self._chunk_steps = max(1, min(MAX_POINTS - 1, int(chunk_seconds * 1000 // self._step_ms)))
        self._extra = extra_matchers
        self._rate_window = rate_window_seconds

    def query(self, target: BackfillTarget) -> str:
        """The PromQL the target's history is read with."""
        return target.query(self._extra, self._rate_window)

    async def plan(self, target: BackfillTarget, now: float) -> list[Chunk]:
        """The chunks still missing from the store, newest first (none: nothing to do)."""
        end = round(now * 1000)
        # The controller's window, on its grid.
        start = end - self._window_ms
        start -= start % self._step_ms
        stamps = await in_thread(self._clock, self._timestamps, target, start, end)
        spans = missing_spans(stamps, start, end, self._max_gap_ms)
        return [
            Chunk(a, b, self._step_ms) for a, b in chunks(spans, self._step_ms, self._chunk_steps)
        ]

    def _timestamps(
        self, target: BackfillTarget, start_ms: int, end_ms: int
    ) -> npt.NDArray[np.int64]:
        matchers = [eq(k, v) for k, v in target.labels().items()]
        found = self._store.select(matchers, start_ms, end_ms)
        if not found:
            return np.zeros(0, np.int64)
        return np.concatenate([s.timestamps for s in found]).astype(np.int64)

    async def copy(self, target: BackfillTarget, chunk: Chunk) -> int:
        """Ask one chunk and append what it returns; the number of samples written."""
        query = self.query(target)
        result = await self._source.range(
            query, chunk.first_ms / 1000, chunk.last_ms / 1000, chunk.step_ms / 1000
        )
        if len(result) > 1:
            raise PrometheusSourceError("bad_data", f"{query!r} returned {len(result)} series")
        if not result:
            return 0
        series = result[0]
        keep = (
            np.isfinite(series.values)
            & (series.timestamps_ms >= chunk.first_ms)
            & (series.timestamps_ms <= chunk.last_ms)
        )
        n = int(keep.sum())
        if n:
            ref = self._store.ref(make_labels(target.labels()))
            self._store.append_batch(
                np.full(n, ref, np.int32), series.timestamps_ms[keep], series.values[keep]
            )
        return n
