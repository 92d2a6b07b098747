"""Reading the store's write-ahead log from the outside, and the segments kept for readers:
every appended sample is read once, in order, across seals and restarts; a reader's
segments outlive sealing (and a restart) until it moves on, but not past its bound."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from remotewrite.queue import QueueManager
from remotewrite.service import RemoteWrite
from remotewrite.settings import RemoteWriteSettings
from remotewrite.shards import Shard, split_record
from runtime.clock import VirtualClock
from tests.remotewrite.conftest import START, append_steps
from tsdb import Store, StoreSettings
from tsdb.recordlog import frame
from tsdb.wal_readers import (
    forget_reader,
    load_reader_state,
    reader_names,
    save_reader_state,
    segment_path,
)
from tsdb.wal_tail import SeriesNames, WalRecord, WalTail, segments


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def open_store(data: Path) -> Iterator[list[Store]]:
    opened: list[Store] = []
    yield opened
    for s in opened:
        s.close()


def _store(data: Path, opened: list[Store]) -> Store:
    store = Store(StoreSettings(data_dir=data, head_max_samples=1000), VirtualClock(START))
    opened.append(store)
    return store


def _read_all(tail: WalTail) -> list[WalRecord]:
    out = []
    while records := tail.read(700):
        out.extend(records)
    return out


def _samples(records: list[WalRecord]) -> list[tuple[int, int, float]]:
    return [
        (s, t, v)
        for r in records
        for s, t, v in zip(r.sids.tolist(), r.ts.tolist(), r.values.tolist(), strict=True)
    ]


def test_the_tail_reads_every_sample_once_across_seals(data: Path, open_store: list[Store]) -> None:
    store = _store(data, open_store)
    save_reader_state(data, "r", 1, 1 << 30, {})
    tail = WalTail(data, 1, 0)
    first = _read_all(tail)
    n = append_steps(store, "m", 70, range(30))  # 2100 samples, two seals
    later = _read_all(tail)
    assert first == []
    got = _samples(later)
    assert len(got) == n
    refs = {store.ref({"__name__": "m", "i": f"{i:04d}"}): i for i in range(70)}
    want = [
        (sid, int(START * 1000) + step * 15_000, step + i / 1000)
        for step in range(30)
        for sid, i in refs.items()
    ]
    assert got == want
    names = SeriesNames(data)
    assert names.resolve(later[0].sids) == []
    assert names.get(next(iter(refs))) == (("__name__", "m"), ("i", "0000"))
    assert tail.read(100) == []


def test_a_reader_keeps_sealed_segments_until_it_moves_on_and_across_a_restart(
    data: Path, open_store: list[Store]
) -> None:
    store = _store(data, open_store)
    save_reader_state(data, "r", 1, 1 << 30, {"mine": 1})
    append_steps(store, "m", 100, range(35))  # three seals
    kept = segments(data)
    assert kept[0] == 1 and len(kept) >= 4
    store.close()
    # Reopened: the covered segments stay and are not replayed into the head again.
    store = _store(data, open_store)
    assert segments(data)[: len(kept)] == kept
    assert store.stats().head_samples == 500
    assert load_reader_state(data, "r") == {"mine": 1, "segment": 1, "max_held_bytes": 1 << 30}
    tail = WalTail(data, 1, 0)
    assert len(_samples(_read_all(tail))) == 3500
    save_reader_state(data, "r", tail.segment, 1 << 30, {})
    append_steps(store, "m", 100, range(35, 45))  # one more seal
    assert segments(data)[0] >= tail.segment
    forget_reader(data, "r")
    assert reader_names(data) == []


def test_a_reader_past_its_bound_loses_the_oldest_segments_and_skips_them(
    data: Path, open_store: list[Store]
) -> None:
    store = _store(data, open_store)
    save_reader_state(data, "r", 1, 1, {})  # one byte: nothing may be held back
    append_steps(store, "m", 100, range(35))
    assert segments(data)[0] > 1
    tail = WalTail(data, 1, 0)
    got = _samples(_read_all(tail))
    assert tail.skipped_segments == segments(data)[0] - 1
    assert len(got) == 500  # the head's, in the live segment


def test_a_damaged_tail_of_a_finished_segment_is_skipped(
    data: Path, open_store: list[Store], caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(data, open_store)
    append_steps(store, "m", 10, range(3))
    store.close()
    store = _store(data, open_store)  # a new segment: 1 is finished
    with segment_path(data, 1).open("ab") as f:
        f.write(frame(2, b"torn")[:-2])
    append_steps(store, "m", 10, range(3, 5))
    got = _samples(_read_all(WalTail(data, 1, 0)))
    assert len(got) == 50
    assert "skipping the rest of this finished segment" in caplog.text


def test_split_record_skips_what_a_shard_delivered_before_a_restart() -> None:
    sids = np.arange(10, dtype=np.int32)
    record = WalRecord(3, 100, sids, np.arange(10, dtype=np.int64), np.ones(10))
    shards = [Shard(acked=(3, 100, 4)), Shard(acked=(3, 0, 0))]
    parts = split_record(record, shards, 0.0)
    kept = {k: chunk.sids.tolist() for k, chunk in parts}
    assert kept == {0: [4, 6, 8], 1: [1, 3, 5, 7, 9]}
    for k, chunk in parts:
        shards[k].push(chunk)
    batch = shards[1].take_until((3, 100, 6))
    assert batch is not None and batch.sids.tolist() == [1, 3, 5] and batch.end == (3, 100, 6)
    batch = shards[1].take(1)
    assert batch is not None and batch.sids.tolist() == [7] and batch.end == (3, 100, 8)
    assert shards[1].pending == 1 and shards[0].pending == 3


def test_a_batch_to_send_again_stays_in_flight_until_sent(data: Path) -> None:
    """Killed again before it resent the batch in flight, a queue still knows where that
    batch ended."""
    shards = [
        {"acked": [3, 10, 0], "inflight": [3, 10, 50]},
        {"acked": [3, 0, 0], "inflight": None},
    ]
    save_reader_state(data, "q", 3, 1 << 30, {"shards": shards})
    queue = QueueManager(
        RemoteWriteSettings(url="http://127.0.0.1:1", name="q"), data, VirtualClock()
    )
    queue._load()
    assert [s.cut_at for s in queue.shards] == [(3, 10, 50), None]
    state = load_reader_state(data, "q")
    assert state is not None and state["shards"] == shards


async def test_a_receiver_removed_from_the_settings_has_its_position_forgotten(
    data: Path,
) -> None:
    save_reader_state(data, "gone", 1, 1 << 30, {})
    clock = VirtualClock()
    remote = RemoteWrite([], data, clock)
    task = asyncio.create_task(remote.run())
    for _ in range(500):  # a thread removes the file
        if not reader_names(data):
            break
        await asyncio.sleep(0.01)
    assert reader_names(data) == []
    assert not task.done()  # waits for stop, as a supervised task of the service
    await remote.stop()
    await asyncio.wait_for(task, 5)
    await clock.aclose()
