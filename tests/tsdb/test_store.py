from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

import numpy as np
import pytest

from runtime.clock import VirtualClock
from tsdb import (
    STALE_NAN,
    Matcher,
    SeriesLimitExceeded,
    Store,
    StoreLocked,
    StoreSettings,
    UnknownSeries,
    eq,
    is_stale,
    name_is,
    stale_mask,
)
from tsdb.labels import InvalidLabels

T0 = 1_700_000_000_000
ALL = (0, 2**62)


def test_append_and_select_one_series(open_store: Callable[..., Store]) -> None:
    store = open_store()
    for i in range(10):
        store.append({"__name__": "up", "job": "api"}, T0 + i * 15_000, float(i))
    [series] = store.select([name_is("up")], *ALL)
    assert series.labels == (("__name__", "up"), ("job", "api"))
    assert series.timestamps.tolist() == [T0 + i * 15_000 for i in range(10)]
    assert series.values.tolist() == [float(i) for i in range(10)]


def test_select_limits_time_range_inclusively(open_store: Callable[..., Store]) -> None:
    store = open_store()
    ref = store.ref({"__name__": "x"})
    store.append_batch(np.full(5, ref, np.int32), T0 + np.arange(5) * 1000, np.arange(5.0))
    [s] = store.select([name_is("x")], T0 + 1000, T0 + 3000)
    assert s.values.tolist() == [1.0, 2.0, 3.0]
    assert store.select([name_is("x")], T0 + 10_000, T0 + 20_000) == []


def test_batch_with_one_timestamp(open_store: Callable[..., Store]) -> None:
    store = open_store()
    refs = np.array([store.ref({"__name__": "m", "i": str(i)}) for i in range(3)], np.int32)
    store.append_batch(refs, T0, np.array([1.0, 2.0, 3.0]))
    got = {s.labels[1][1]: s.values.tolist() for s in store.select([name_is("m")], *ALL)}
    assert got == {"0": [1.0], "1": [2.0], "2": [3.0]}


def test_matchers_follow_prometheus_semantics(open_store: Callable[..., Store]) -> None:
    store = open_store()
    for labels in (
        {"__name__": "m", "env": "prod", "app": "web"},
        {"__name__": "m", "env": "dev", "app": "web"},
        {"__name__": "m", "app": "db"},
    ):
        store.append(labels, T0, 1.0)

    def apps(*matchers: Matcher) -> list[str]:
        return sorted(
            dict(s.labels)["app"] + dict(s.labels).get("env", "")
            for s in store.select(list(matchers), *ALL)
        )

    assert apps(name_is("m"), eq("env", "prod")) == ["webprod"]
    assert apps(name_is("m"), Matcher.parse("env", "!=", "prod")) == ["db", "webdev"]
    assert apps(name_is("m"), Matcher.parse("env", "=~", "pro.*")) == ["webprod"]
    # Regexes are anchored: "ro" does not match "prod".
    assert apps(name_is("m"), Matcher.parse("env", "=~", "ro")) == []
    assert apps(name_is("m"), Matcher.parse("env", "!~", "dev|prod")) == ["db"]
    # An empty value matches series without the label.
    assert apps(name_is("m"), eq("env", "")) == ["db"]
    assert apps(name_is("m"), Matcher.parse("env", "!=", "")) == ["webdev", "webprod"]
    assert apps(Matcher.parse("__name__", "=~", "m|n"), eq("app", "db")) == ["db"]


def test_label_names_and_values(open_store: Callable[..., Store]) -> None:
    store = open_store()
    store.append({"__name__": "a", "x": "1"}, T0, 1)
    store.append({"__name__": "b", "y": "2"}, T0, 1)
    assert store.label_names() == ["__name__", "x", "y"]
    assert store.label_values("__name__") == ["a", "b"]
    assert store.series([eq("x", "1")]) == [(("__name__", "a"), ("x", "1"))]


def test_last_write_wins_for_duplicate_timestamps(open_store: Callable[..., Store]) -> None:
    store = open_store(head_max_samples=1_000)
    ref = store.ref({"__name__": "d"})
    store.append(ref, T0, 1.0)
    store.append(ref, T0, 2.0)
    [s] = store.select([name_is("d")], *ALL)
    assert s.values.tolist() == [2.0]
    # Also across a sealed block and the head.
    store.append_batch(np.full(1000, ref, np.int32), T0 + 1000 + np.arange(1000), np.zeros(1000))
    store.append(ref, T0, 3.0)
    [s] = store.select([name_is("d")], T0, T0)
    assert s.values.tolist() == [3.0]


def test_out_of_order_samples_come_back_sorted(open_store: Callable[..., Store]) -> None:
    store = open_store()
    ref = store.ref({"__name__": "o"})
    for t in (5, 1, 3, 2, 4):
        store.append(ref, T0 + t, float(t))
    [s] = store.select([name_is("o")], *ALL)
    assert s.timestamps.tolist() == [T0 + t for t in (1, 2, 3, 4, 5)]
    assert s.values.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_staleness_marker_is_kept_bit_exact(open_store: Callable[..., Store]) -> None:
    store = open_store()
    store.append({"__name__": "s"}, T0, math.nan)
    store.mark_stale({"__name__": "s"}, T0 + 1)
    [s] = store.select([name_is("s")], *ALL)
    assert stale_mask(s.values).tolist() == [False, True]
    assert is_stale(float(s.values[1])) and not is_stale(float(s.values[0]))
    assert is_stale(STALE_NAN) and not is_stale(math.nan)


def test_samples_span_head_and_blocks(open_store: Callable[..., Store]) -> None:
    store = open_store(head_max_samples=1_000)
    refs = np.array([store.ref({"__name__": "b", "i": str(i)}) for i in range(100)], np.int32)
    for k in range(25):
        store.append_batch(refs, T0 + k * 1000, np.full(100, float(k)))
    stats = store.stats()
    assert stats.blocks >= 2 and stats.head_samples > 0
    result = store.select([name_is("b"), eq("i", "7")], *ALL)
    assert [s.values.tolist() for s in result] == [[float(k) for k in range(25)]]


def test_invalid_labels_are_rejected(open_store: Callable[..., Store]) -> None:
    store = open_store()
    with pytest.raises(InvalidLabels, match="no metric name"):
        store.ref({"job": "x"})
    with pytest.raises(InvalidLabels, match="invalid label name '1a'"):
        store.ref({"__name__": "m", "1a": "x"})
    with pytest.raises(InvalidLabels, match="invalid metric name"):
        store.ref({"__name__": "a-b"})


def test_unknown_refs_are_rejected(open_store: Callable[..., Store]) -> None:
    store = open_store()
    store.ref({"__name__": "m"})
    with pytest.raises(UnknownSeries, match="unknown series id 5"):
        store.append_batch(np.array([0, 5], np.int32), T0, np.array([1.0, 2.0]))
    with pytest.raises(UnknownSeries):
        store.append(7, T0, 1.0)


def test_series_limit_bounds_memory(open_store: Callable[..., Store]) -> None:
    store = open_store(max_series=2)
    store.ref({"__name__": "a"})
    store.ref({"__name__": "b"})
    with pytest.raises(SeriesLimitExceeded, match="max_series=2"):
        store.ref({"__name__": "c"})
    assert store.stats().samples_rejected == {"series_limit": 1}


def test_second_process_cannot_open_the_same_directory(open_store: Callable[..., Store]) -> None:
    open_store()
    with pytest.raises(StoreLocked, match="another foresight process"):
        open_store()


def test_downsampling_and_retention(open_store: Callable[..., Store], clock: VirtualClock) -> None:
    store = open_store(
        block_duration_minutes=60,
        raw_retention_hours=2,
        minute_retention_days=1,
        five_minute_retention_days=2,
    )
    ref = store.ref({"__name__": "g"})
    start = int(clock.now() * 1000)
    # Ten hours of 10-second samples, value = seconds since start.
    ts = start + np.arange(0, 10 * 3600, 10) * 1000
    store.append_batch(np.full(len(ts), ref, np.int32), ts, (ts - start) / 1000.0)
    clock.advance(10 * 3600)
    store.maintain()
    [s] = store.select([name_is("g")], *ALL)
    # Blocks are hour windows; those ending more than 2 h ago are downsampled.
    boundary = (start + 8 * 3_600_000) // 3_600_000 * 3_600_000
    old = s.timestamps < boundary
    # Old data keeps the last sample of each minute, recent data every sample.
    assert np.all(np.diff(s.timestamps[old]) == 60_000)
    assert np.all(s.timestamps[old] % 60_000 == 50_000)
    assert np.all(np.diff(s.timestamps[~old]) == 10_000)
    assert np.array_equal(s.values, (s.timestamps - start) / 1000.0)
    # A day later everything is 5-minute; two days later it is gone along with the series.
    clock.advance(36 * 3600)
    store.maintain()
    [s] = store.select([name_is("g")], *ALL)
    # The last bucket is cut short by the end of the data.
    assert np.all(np.diff(s.timestamps[:-1]) == 300_000)
    clock.advance(24 * 3600)
    store.maintain()
    assert store.select([name_is("g")], *ALL) == []
    assert store.series([name_is("g")]) == []
    assert store.generation == 1


def test_blocks_of_a_closed_window_are_merged(
    open_store: Callable[..., Store], clock: VirtualClock
) -> None:
    store = open_store(head_max_samples=1_000, block_duration_minutes=60)
    refs = np.array([store.ref({"__name__": "w", "i": str(i)}) for i in range(10)], np.int32)
    for k in range(400):  # 400 × 10 s: 1 h 7 min, sealed every 100 steps
        store.append_batch(refs, T0 + k * 10_000, np.full(10, float(k)))
    before = store.stats().blocks
    store.maintain()
    assert store.stats().blocks == before, "the windows are still open"
    clock.advance(3 * 3600)
    store.maintain()
    after = store.stats().blocks
    assert after < before
    [s] = store.select([name_is("w"), eq("i", "3")], *ALL)
    assert s.values.tolist() == [float(k) for k in range(400)]


def test_in_memory_store_needs_no_directory(clock: VirtualClock) -> None:
    store = Store(StoreSettings(head_max_samples=1_000), clock, persistent=False)
    ref = store.ref({"__name__": "m"})
    store.append_batch(np.full(3000, ref, np.int32), T0 + np.arange(3000), np.ones(3000))
    assert len(store.select([name_is("m")], *ALL)[0].values) == 3000
    assert store.stats().disk_bytes == 0
    store.close()


def test_memory_per_sample_is_small(clock: VirtualClock) -> None:
    store = Store(StoreSettings(head_max_samples=100_000), clock, persistent=False)
    refs = np.array([store.ref({"__name__": "m", "i": str(i)}) for i in range(1000)], np.int32)
    for k in range(1000):
        store.append_batch(refs, T0 + k * 15_000, np.full(1000, float(k)))
    stats = store.stats()
    assert stats.memory_bytes / stats.samples_appended <= 16


def test_flush_happens_on_the_interval(
    open_store: Callable[..., Store], clock: VirtualClock, tmp_path: object
) -> None:
    store = open_store(flush_interval_seconds=1)
    wal = store.settings.data_dir / "wal"
    store.append({"__name__": "f"}, T0, 1.0)
    assert sum(p.stat().st_size for p in wal.iterdir()) == 0
    clock.advance(1)
    store.append({"__name__": "f"}, T0 + 1, 2.0)
    assert sum(p.stat().st_size for p in wal.iterdir()) > 0


async def test_background_flusher_flushes_without_appends(
    open_store: Callable[..., Store], clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(flush_interval_seconds=2)
    wal = store.settings.data_dir / "wal"
    store.append({"__name__": "f"}, T0, 1.0)
    task = asyncio.create_task(store.run_flusher())
    await clock.sleep(3)
    assert sum(p.stat().st_size for p in wal.iterdir()) > 0
    task.cancel()
    with caplog.at_level(logging.INFO):
        await asyncio.gather(task, return_exceptions=True)
    await clock.aclose()


def test_a_later_write_wins_over_a_downsampled_older_block(
    open_store: Callable[..., Store], clock: VirtualClock
) -> None:
    store = open_store(block_duration_minutes=60, head_max_samples=1_000, raw_retention_hours=1)
    ref = store.ref({"__name__": "w"})
    now = int(clock.now() * 1000)
    hour = now // 3_600_000 * 3_600_000 - 3_600_000
    filler = store.ref({"__name__": "filler"})
    # Block A: one sample a minute for the first ten minutes of the last hour, so the one at
    # :00 survives downsampling; another series fills the head so that it is sealed.
    refs = np.array([ref] * 10 + [filler] * 990, np.int32)
    stamps = np.concatenate((hour + np.arange(10) * 60_000, hour + np.arange(990) * 600))
    store.append_batch(refs, stamps, np.zeros(1_000))
    # Block B, written later: overwrites :00 and reaches to :59.
    store.append_batch(
        np.full(1_000, ref, np.int32),
        np.concatenate(([hour], hour + 3_000_000 + np.arange(999) * 600)),
        np.ones(1_000),
    )
    # With the raw limit between A's end and B's end, only A is downsampled, under a new id.
    raw_limit = now - 3_600_000
    assert hour + 600_000 < raw_limit < hour + 3_000_000
    store.maintain()
    assert store.stats().blocks == 2
    [s] = store.select([name_is("w")], hour, hour)
    assert s.values.tolist() == [1.0]


def test_maintain_merges_the_small_blocks_of_a_filling_window(
    open_store: Callable[..., Store],
) -> None:
    store = open_store(head_max_samples=1_000, block_duration_minutes=120)
    refs = np.array([store.ref({"__name__": "m", "i": str(i)}) for i in range(250)], np.int32)
    expected: dict[int, dict[int, float]] = {i: {} for i in range(250)}
    # Sixteen head cuts into one window; every fourth batch rewrites earlier samples.
    for batch in range(16):
        step = batch - 3 if batch % 4 == 3 else batch
        for k in range(4):
            ts = T0 + (4 * step + k) * 15_000
            values = np.arange(250.0) + 1000 * batch
            store.append_batch(refs, ts, values)
            for i in range(250):
                expected[i][ts] = float(values[i])
    before = store.stats().blocks
    store.maintain()
    after = store.stats().blocks
    assert after < before

    def contents(s: Store) -> dict[int, dict[int, float]]:
        return {
            int(dict(series.labels)["i"]): dict(
                zip(series.timestamps.tolist(), series.values.tolist(), strict=True)
            )
            for series in s.select([name_is("m")], *ALL)
        }

    assert contents(store) == expected
    store.close()
    assert contents(open_store(head_max_samples=1_000, block_duration_minutes=120)) == expected


def test_coded_selection_names_the_same_series(open_store: Callable[..., Store]) -> None:
    store = open_store()
    store.append({"__name__": "a", "x": "1"}, T0, 1.0)
    store.append({"__name__": "a", "y": "2", "z": "3"}, T0, 2.0)
    store.append({"__name__": "b", "x": "1"}, T0, 3.0)
    coded = store.select_coded([name_is("a")], *ALL)
    assert coded.names == ["__name__", "x", "y", "z"]
    strings = store.strings
    rows = [[strings.value(int(c)) for c in row] for row in coded.codes]
    assert rows == [["a", "1", "", ""], ["a", "", "2", "3"]]
    assert coded.values.tolist() == [1.0, 2.0]


def test_a_series_created_since_the_last_forgetting_is_kept_once(
    open_store: Callable[..., Store], clock: VirtualClock
) -> None:
    store = open_store(
        head_max_samples=1_000,
        block_duration_minutes=60,
        raw_retention_hours=2,
        minute_retention_days=1,
        five_minute_retention_days=2,
    )

    def expire(name: str) -> None:
        """Write an hour of ``name`` and let retention drop it, which forgets series."""
        ref = store.ref({"__name__": name})
        start = int(clock.now() * 1000)
        for half in (0, 1800):
            ts = start + np.arange(half, half + 1800, 2) * 1000
            store.append_batch(np.full(len(ts), ref, np.int32), ts, np.ones(len(ts)))
        clock.advance(4 * 86_400)
        store.maintain()

    # Created without a sample yet: its first one may be on its way.
    born = store.ref({"__name__": "born"})
    expire("first")
    assert store.labels(born) == (("__name__", "born"),)
    assert store.series([name_is("first")]) != []
    assert store.generation == 0
    expire("second")
    assert store.series([name_is("born")]) == []
    assert store.series([name_is("first")]) == []
    assert store.series([name_is("second")]) != []
    assert store.generation == 1
