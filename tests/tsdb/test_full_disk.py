"""The store and its record files on a really full disk (a small tmpfs): a failed write leaves
nothing torn behind, nothing raises to the appender, and what was flushed before and after is
there after a crash.

A crash is simulated by copying the data directory while the store is still open: what the
copy holds is what the files held when the process died (writes go through the OS at once).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.chaos_disk import SmallDisk
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings, name_is
from tsdb.recordlog import RecordWriter, frame, read_records

T0 = 1_700_000_000_000
ALL = (0, 2**62)


def _crash_copy(store: Store, to: Path) -> Path:
    """The data directory as a kill -9 now would leave it."""
    return Path(shutil.copytree(store.settings.data_dir, to))


def _samples(data_dir: Path, clock: VirtualClock, name: str) -> list[float]:
    store = Store(StoreSettings(data_dir=data_dir), clock)
    try:
        [series] = store.select([name_is(name)], *ALL)
        return [float(v) for v in series.values]
    finally:
        store.close()


def test_a_failed_write_is_cut_back_and_the_writer_goes_on(disk: SmallDisk) -> None:
    ballast = disk.path / "ballast"
    ballast.write_bytes(b"\0" * (256 << 10))
    path = disk.path / "records"
    writer = RecordWriter(path)
    record = frame(1, b"r" * 10_000)
    written = 0
    with pytest.raises(OSError) as failed:
        while True:
            writer.write(record)
            written += 1
    assert failed.value.errno == errno.ENOSPC
    assert failed.value.filename == str(path)
    # The last write got part of the record onto the disk before it ran out; it is gone.
    assert writer.size() == written * len(record)
    result = read_records(path.read_bytes())
    assert result.damage is None and len(result.records) == written
    ballast.unlink()
    writer.write(frame(2, b"after"))
    writer.close()
    result = read_records(path.read_bytes())
    assert result.damage is None
    assert [r.kind for r in result.records] == [1] * written + [2]


def test_appends_and_reads_go_on_while_the_disk_is_full_and_nothing_is_lost(
    disk: SmallDisk, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock(start=T0 / 1000)
    store = Store(StoreSettings(data_dir=disk.path / "store"), clock)
    ref = store.ref({"__name__": "x"})
    for i in range(100):
        store.append(ref, T0 + i * 1000, float(i))
    store.flush()
    disk.fill()
    with caplog.at_level(logging.WARNING, logger="tsdb.store"):
        for i in range(100, 2_000):
            store.append(ref, T0 + i * 1000, float(i))
            store.flush()
        # A series created on the full disk waits for the series log too.
        late = store.ref({"__name__": "late"})
        store.append(late, T0, 1.0)
        store.flush()
        [during] = store.select([name_is("x")], *ALL)
        assert len(during.values) == 2_000
        stats = store.stats()
        assert stats.write_failing and stats.write_failures["flush"] > 1
        failing = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(failing) == 1, "logged once for the whole episode"
        assert "ENOSPC" in failing[0].getMessage()
        assert str(disk.path / "store") in failing[0].getMessage()
        disk.release()
        for i in range(2_000, 2_100):
            store.append(ref, T0 + i * 1000, float(i))
        store.flush()
    assert not store.stats().write_failing
    assert "works again" in caplog.text
    copy = _crash_copy(store, tmp_path / "crashed")
    assert _samples(copy, clock, "x") == [float(i) for i in range(2_100)]
    assert _samples(copy, clock, "late") == [1.0]
    store.close()


def test_a_head_sealed_on_a_full_disk_stays_in_memory_until_space_returns(
    disk: SmallDisk, tmp_path: Path
) -> None:
    clock = VirtualClock(start=T0 / 1000)
    store = Store(StoreSettings(data_dir=disk.path / "store", head_max_samples=1_000), clock)
    blocks = disk.path / "store" / "blocks"
    ref = store.ref({"__name__": "s"})
    store.flush()
    disk.fill()
    for start in range(0, 3_000, 500):
        rows = np.arange(start, start + 500)
        store.append_batch(np.full(500, ref, np.int32), T0 + rows * 1000, rows.astype(float))
        clock.advance(5)
    assert store.stats().write_failures.get("seal", 0) > 0
    assert not list(blocks.iterdir()), "no block, whole or half, is published"
    [during] = store.select([name_is("s")], *ALL)
    assert len(during.values) == 3_000
    disk.release()
    clock.advance(60)
    store.append(ref, T0 + 3_000 * 1000, 3_000.0)
    assert store.stats().blocks > 0 and not store.stats().write_failing
    copy = _crash_copy(store, tmp_path / "crashed")
    assert _samples(copy, clock, "s") == [float(i) for i in range(3_001)]
    store.close()


async def test_the_background_flusher_outlives_a_full_disk(disk: SmallDisk) -> None:
    clock = VirtualClock(start=T0 / 1000)
    store = Store(StoreSettings(data_dir=disk.path / "store"), clock)
    ref = store.ref({"__name__": "b"})
    task = asyncio.create_task(store.run_flusher())
    disk.fill()
    for i in range(600):
        store.append(ref, T0 + i * 1000, float(i))
        await clock.sleep(1)
    assert not task.done()
    # Retried with backoff: far fewer attempts than the 600 flush intervals that passed.
    failures = store.stats().write_failures["flush"]
    assert 3 < failures < 60
    disk.release()
    await clock.sleep(60)
    assert not store.stats().write_failing
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await clock.aclose()
    store.close()
    assert len(_samples(disk.path / "store", clock, "b")) == 600


def test_a_failed_write_that_cannot_be_cut_back_stops_the_writer() -> None:
    # /dev/full: every write fails with ENOSPC and it cannot be truncated.
    writer = RecordWriter(Path("/dev/full"))
    try:
        with pytest.raises(OSError) as failed:
            writer.write(frame(1, b"first"))
        assert failed.value.errno == errno.ENOSPC
        assert writer.torn
        with pytest.raises(OSError, match="cannot cut a failed write"):
            writer.write(frame(1, b"second"))
    finally:
        writer.close()


def test_the_log_moves_to_a_new_segment_when_a_failed_write_cannot_be_cut_back(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(start=T0 / 1000)
    store = Store(StoreSettings(data_dir=tmp_path / "data"), clock)
    ref = store.ref({"__name__": "r"})
    store.append(ref, T0, 0.0)
    store.flush()
    # The segment turns into a device that fails every write and every cut.
    assert store._wal_writer is not None
    store._wal_writer.close()
    store._wal_writer = RecordWriter(Path("/dev/full"))
    store.append(ref, T0 + 1000, 1.0)
    store.flush()
    assert store.stats().write_failing
    store.append(ref, T0 + 2000, 2.0)
    store.flush()
    assert not store.stats().write_failing
    copy = _crash_copy(store, tmp_path / "crashed")
    assert _samples(copy, clock, "r") == [0.0, 1.0, 2.0]
    store.close()


def test_the_store_opens_on_a_full_disk(disk: SmallDisk, tmp_path: Path) -> None:
    clock = VirtualClock(start=T0 / 1000)
    data_dir = disk.path / "store"
    with Store(StoreSettings(data_dir=data_dir), clock) as store:
        store.append({"__name__": "o"}, T0, 0.0)
    # Without its lock file, whose page the next open would free and reuse.
    (data_dir / "lock").unlink()
    disk.fill()
    store = Store(StoreSettings(data_dir=data_dir), clock)
    store.append({"__name__": "o"}, T0 + 1000, 1.0)
    store.flush()
    assert store.stats().write_failing
    [during] = store.select([name_is("o")], *ALL)
    assert during.values.tolist() == [0.0, 1.0]
    disk.release()
    store.flush()
    copy = _crash_copy(store, tmp_path / "crashed")
    assert _samples(copy, clock, "o") == [0.0, 1.0]
    store.close()


def test_closing_on_a_full_disk_says_how_many_samples_are_lost(
    disk: SmallDisk, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(StoreSettings(data_dir=disk.path / "store"), VirtualClock(start=T0 / 1000))
    ref = store.ref({"__name__": "c"})
    store.flush()
    disk.fill()
    for i in range(1_000):
        store.append(ref, T0 + i * 1000, float(i))
    with caplog.at_level(logging.ERROR, logger="tsdb.store"):
        store.close()
    assert "closing with 1000 samples that could not be written" in caplog.text


def test_the_full_disk_shows_in_the_exported_health_metrics(disk: SmallDisk) -> None:
    from collectors.state_metrics import health_families  # noqa: PLC0415

    def exported(store: Store) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (fam.name, tuple(sorted(labels.items()))): value
            for fam in health_families([], None, store.stats())
            if fam.name.startswith("foresight_store_write")
            for labels, value in fam.samples
        }

    clock = VirtualClock(start=T0 / 1000)
    store = Store(StoreSettings(data_dir=disk.path / "store"), clock)
    ref = store.ref({"__name__": "x"})
    before = exported(store)
    assert before[("foresight_store_write_failures_total", (("operation", "flush"),))] == 0
    assert before[("foresight_store_write_failing", ())] == 0
    disk.fill()
    store.append(ref, T0, 1.0)
    store.flush()
    during = exported(store)
    assert during[("foresight_store_write_failures_total", (("operation", "flush"),))] >= 1
    assert during[("foresight_store_write_failing", ())] == 1
    disk.release()
    store.flush()
    assert exported(store)[("foresight_store_write_failing", ())] == 0
    store.close()
