"""Queries over a real Prometheus as the store behind a short embedded buffer.

Two days of series go into a real Prometheus (as promtool blocks); the embedded store holds
only their last hour, as it would with ``storage.query_url`` set. Every query over the
buffered pair must equal the same query over one store holding everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from collectors.prometheus_source import PrometheusSource
from collectors.remote_querier import RemoteQuerier, selector
from promql import Engine
from promql.buffered import BufferedQuerier, RemoteStorageError, merge
from promql.errors import PromQLError
from runtime.backoff import Backoff
from runtime.clock import VirtualClock
from tests.support.prometheus import blocks_from_store, free_port, running_prometheus
from tsdb import Matcher, Series, Store, StoreSettings, make_labels, name_is

STEP_MS = 15_000
DAYS = 2
# A whole number of minutes, well in the past of any clock: Prometheus keeps blocks by the
# newest block's time, not the wall clock (retention is set long below anyway).
END_MS = 1_760_000_000_000
START_MS = END_MS - DAYS * 86_400_000
BUFFER_MS = 3_600_000
QUERIES = [
    "sum by (job) (rate(http_requests_total[5m]))",
    'max_over_time(memory_bytes{instance=~"i-[12]"}[1h])',
    "avg(memory_bytes) by (instance)",
    "increase(http_requests_total[30m])",
    "absent(nothing_here)",
    "count(http_requests_total offset 1d)",
]


def _fill(store: Store, start_ms: int, end_ms: int) -> None:
    rng = np.random.default_rng(7)
    stamps = np.arange(START_MS, END_MS + 1, STEP_MS, dtype=np.int64)
    keep = (stamps >= start_ms) & (stamps <= end_ms)
    for i in range(4):
        for name, values in (
            ("http_requests_total", np.cumsum(rng.integers(0, 50, len(stamps))).astype(float)),
            ("memory_bytes", (2**28 + rng.integers(0, 2**20, len(stamps)) * 4096).astype(float)),
        ):
            labels = make_labels({"__name__": name, "job": f"j{i % 2}", "instance": f"i-{i}"})
            ref = store.ref(labels)
            n = int(keep.sum())
            store.append_batch(np.full(n, ref, np.int32), stamps[keep], values[keep])


@dataclass
class Pair:
    full: Store
    buffer: Store
    url: str


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    clock = VirtualClock(start=END_MS / 1000)
    full = Store(StoreSettings(), clock, persistent=False)
    _fill(full, START_MS, END_MS)
    buffer = Store(StoreSettings(), clock, persistent=False)
    _fill(buffer, END_MS - BUFFER_MS, END_MS)
    tsdb = blocks_from_store(full, tmp_path)
    with running_prometheus(
        tmp_path, "global: {}\n", tsdb, "--storage.tsdb.retention.time=100y"
    ) as url:
        yield Pair(full, buffer, url)
    full.close()
    buffer.close()


@pytest.fixture
async def remote(pair: Pair) -> AsyncIterator[RemoteQuerier]:
    querier = RemoteQuerier(chunk_seconds=6 * 3600)  # several chunks over two days
    async with httpx.AsyncClient() as client:
        source = PrometheusSource(client, pair.url, VirtualClock(), Backoff(0.1, 1, attempts=1))
        querier.bind(source, asyncio.get_running_loop(), pair.url)
        yield querier


def _rows(result: object) -> list[tuple[str, list[float], list[float]]]:
    series = getattr(result, "series")  # noqa: B009
    return sorted(
        (str(sorted(s.labels)), np.asarray(s.timestamps).tolist(), np.asarray(s.values).tolist())
        for s in series
    )


async def test_queries_over_buffer_and_remote_equal_one_store(
    pair: Pair, remote: RemoteQuerier
) -> None:
    buffered = Engine(BufferedQuerier(pair.buffer, remote, lambda: END_MS - BUFFER_MS))
    whole = Engine(pair.full)
    for text in QUERIES:
        for start_ms in (START_MS + 86_400_000, END_MS - 4 * 3_600_000):
            want = whole.range(text, start_ms, END_MS, 60_000)
            got = await asyncio.to_thread(buffered.range, text, start_ms, END_MS, 60_000)
            assert _rows(got) == _rows(want), text
        got_now = await asyncio.to_thread(buffered.instant, text, END_MS)
        assert _rows(got_now) == _rows(whole.instant(text, END_MS)), text


async def test_recent_ranges_never_leave_the_buffer(pair: Pair) -> None:
    class Refusing:
        def select(self, matchers: object, start_ms: int, end_ms: int) -> list[Series]:
            raise AssertionError(f"remote asked for [{start_ms}, {end_ms}]")

    buffered = Engine(BufferedQuerier(pair.buffer, Refusing(), lambda: END_MS - BUFFER_MS))
    result = buffered.instant("sum(rate(http_requests_total[5m]))", END_MS)
    assert result.series and result.series[0].values[-1] > 0


async def test_remote_selection_returns_stored_samples(pair: Pair, remote: RemoteQuerier) -> None:
    matchers = [name_is("http_requests_total"), Matcher.parse("instance", "=~", "i-0|i-3")]
    assert selector(matchers) == '{__name__="http_requests_total",instance=~"i-0|i-3"}'
    got = await remote.select_async(matchers, START_MS, END_MS)
    want = pair.full.select(matchers, START_MS, END_MS)
    assert _rows(type("R", (), {"series": got})) == _rows(type("R", (), {"series": want}))


async def test_the_event_loop_is_never_blocked_on_the_remote_store(
    pair: Pair, remote: RemoteQuerier
) -> None:
    buffered = Engine(BufferedQuerier(pair.buffer, remote, lambda: END_MS - BUFFER_MS))
    with pytest.raises(RemoteStorageError, match="not read on the event loop"):
        buffered.range("sum(memory_bytes)", START_MS, END_MS, 3_600_000)


async def test_an_unreachable_remote_store_fails_the_query_not_the_caller(
    pair: Pair,
) -> None:
    querier = RemoteQuerier()
    dead = f"http://127.0.0.1:{free_port()}"
    async with httpx.AsyncClient() as client:
        source = PrometheusSource(client, dead, VirtualClock(), Backoff(0, 0, attempts=0))
        querier.bind(source, asyncio.get_running_loop(), dead)
        buffered = Engine(BufferedQuerier(pair.buffer, querier, lambda: END_MS - BUFFER_MS))
        with pytest.raises(PromQLError, match=f"remote store {dead}.*unreachable"):
            await asyncio.to_thread(
                buffered.range, "sum(memory_bytes)", START_MS, END_MS, 3_600_000
            )


def test_merge_takes_remote_samples_before_the_buffer_and_fills_remote_gaps() -> None:
    a, b, c, d = (make_labels({"__name__": "m", "i": i}) for i in "abcd")

    def s(labels: tuple[tuple[str, str], ...], ts: list[int], vs: list[float]) -> Series:
        return Series(labels, np.array(ts, np.int64), np.array(vs, np.float64))

    merged = merge(
        [
            # Downsampled copies before 30 lose to the remote samples as collected.
            s(a, [0, 30, 40], [0.5, 3.5, 4.5]),
            s(c, [10], [1.0]),
            # The remote copy of d ends at 10: the buffer fills 20 on.
            s(d, [0, 20, 30], [0.5, 2.5, 3.5]),
        ],
        [s(a, [10, 20, 30, 40], [1, 2, 3, 4]), s(b, [5], [9]), s(d, [0, 10], [0, 1])],
        since_ms=30,
    )
    rows = {m.labels: (m.timestamps.tolist(), m.values.tolist()) for m in merged}
    assert rows == {
        a: ([10, 20, 30, 40], [1.0, 2.0, 3.5, 4.5]),
        b: ([5], [9.0]),
        c: ([10], [1.0]),
        d: ([0, 10, 20, 30], [0.0, 1.0, 2.5, 3.5]),
    }
