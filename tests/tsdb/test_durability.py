"""What survives a crash, and what a damaged data directory gives back."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings, name_is

T0 = 1_700_000_000_000
ALL = (0, 2**62)
WRITER = Path(__file__).with_name("crash_writer.py")
REPO = Path(__file__).resolve().parents[2]


def _kill_writer_after(data_dir: Path, start: int, acks: int) -> int:
    """Run the writer, SIGKILL it after ``acks`` flushed batches; the last acknowledged batch."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir), str(start)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    last = start - 1
    try:
        for _ in range(acks):
            line = proc.stdout.readline()
            if not line:
                break
            last = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert last >= start, "writer produced nothing"
    return last


def test_sigkill_loses_nothing_that_was_flushed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rng = random.Random(7)
    acknowledged = -1
    for _round in range(6):
        acknowledged = _kill_writer_after(data_dir, acknowledged + 1, rng.randint(20, 400))
        store = Store(StoreSettings(data_dir=data_dir), VirtualClock(start=T0 / 1000))
        try:
            series = store.select([name_is("crash")], *ALL)
            assert len(series) == 50
            for s in series:
                batches = (s.timestamps - T0) // 10_000
                # Every acknowledged batch is back, with its value; later ones may be too.
                assert np.array_equal(batches[: acknowledged + 1], np.arange(acknowledged + 1))
                assert np.array_equal(s.values, batches.astype(float))
            # The writer resumes after the last batch it may have written.
            acknowledged = int((series[0].timestamps[-1] - T0) // 10_000)
        finally:
            store.close()


def _filled_store(data_dir: Path, clock: VirtualClock) -> dict[str, list[float]]:
    store = Store(StoreSettings(data_dir=data_dir, head_max_samples=1_000), clock)
    refs = np.array([store.ref({"__name__": "m", "i": str(i)}) for i in range(10)], np.int32)
    for k in range(250):  # 2,500 samples: two sealed blocks and a head in the log
        store.append_batch(refs, T0 + k * 1000, np.full(10, float(k)))
        if k % 10 == 0:
            store.flush()
    store.close()
    return {dict(s.labels)["i"]: s.values.tolist() for s in _read(data_dir, clock)}


def _read(data_dir: Path, clock: VirtualClock) -> list:  # type: ignore[type-arg]
    store = Store(StoreSettings(data_dir=data_dir), clock)
    try:
        return store.select([name_is("m")], *ALL)
    finally:
        store.close()


def _files(data_dir: Path, pattern: str) -> list[Path]:
    return sorted(p for p in data_dir.glob(pattern) if p.stat().st_size)


def test_truncated_log_keeps_the_intact_records(
    tmp_path: Path, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    full = _filled_store(data_dir, clock)
    [segment] = _files(data_dir, "wal/*.seg")
    size = segment.stat().st_size
    with segment.open("r+b") as f:
        f.truncate(size - 7)
    with caplog.at_level(logging.WARNING):
        got = {dict(s.labels)["i"]: s.values.tolist() for s in _read(data_dir, clock)}
    assert f"{segment}: truncated record" in caplog.text
    for i, values in got.items():
        # A prefix survives: the sealed blocks and the intact records of the log.
        assert values == full[i][: len(values)]
        assert 200 <= len(values) < 250


def test_garbled_log_record_is_dropped_with_its_successors(
    tmp_path: Path, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    full = _filled_store(data_dir, clock)
    [segment] = _files(data_dir, "wal/*.seg")
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        got = _read(data_dir, clock)
    assert "checksum mismatch" in caplog.text
    for s in got:
        values = s.values.tolist()
        assert values == full[dict(s.labels)["i"]][: len(values)]


def test_corrupt_block_is_set_aside(
    tmp_path: Path, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    full = _filled_store(data_dir, clock)
    first, second = _files(data_dir, "blocks/*.blk")
    data = bytearray(first.read_bytes())
    data[-10] ^= 0x55
    first.write_bytes(bytes(data))
    second.write_bytes(second.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        got = _read(data_dir, clock)
    assert "checksum mismatch" in caplog.text and "setting it aside" in caplog.text
    assert first.with_name(first.name + ".corrupt").exists()
    assert second.with_name(second.name + ".corrupt").exists()
    for s in got:
        # What the blocks held is gone; the log's samples are intact.
        values = s.values.tolist()
        assert values == full[dict(s.labels)["i"]][-len(values) :]


def test_truncated_series_log_drops_samples_of_lost_series(
    tmp_path: Path, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    _filled_store(data_dir, clock)
    series_log = data_dir / "series.log"
    series_log.write_bytes(series_log.read_bytes()[:-5])
    with caplog.at_level(logging.WARNING):
        got = _read(data_dir, clock)
    assert "series.log" in caplog.text
    assert len(got) == 9


def test_crash_between_merge_and_delete_keeps_one_copy(
    open_store: Callable[..., Store], clock: VirtualClock
) -> None:
    store = open_store(head_max_samples=1_000, block_duration_minutes=60)
    ref = store.ref({"__name__": "m"})
    store.append_batch(
        np.full(5_000, ref, np.int32), T0 + np.arange(5_000) * 100, np.arange(5_000.0)
    )
    blocks_dir = store.settings.data_dir / "blocks"
    sources = {p.name: p.read_bytes() for p in blocks_dir.glob("*.blk")}
    store.append_batch(np.array([ref], np.int32), T0 + 8 * 3_600_000, np.array([1.0]))
    store.maintain()
    assert len(list(blocks_dir.glob("*.blk"))) < len(sources) + 1
    store.close()
    # Put the merged-away sources back, as if the process died before deleting them.
    for name, data in sources.items():
        (blocks_dir / name).write_bytes(data)
    reopened = open_store()
    [s] = reopened.select([name_is("m")], *ALL)
    assert len(s.values) == 5_001
    assert reopened.stats().block_samples + reopened.stats().head_samples == 5_001


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    damage=st.lists(
        st.tuples(
            st.integers(0, 10), st.floats(0, 1), st.sampled_from(["flip", "truncate", "zero"])
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_damage_opens_and_never_invents_data(
    tmp_path_factory: pytest.TempPathFactory, damage: list[tuple[int, float, str]]
) -> None:
    clock = VirtualClock(start=T0 / 1000)
    data_dir = tmp_path_factory.mktemp("damaged") / "data"
    full = _filled_store(data_dir, clock)
    files = sorted(p for p in data_dir.rglob("*") if p.is_file() and p.name != "lock")
    for which, where, how in damage:
        path = files[which % len(files)]
        data = bytearray(path.read_bytes())
        if not data:
            continue
        at = min(int(where * len(data)), len(data) - 1)
        if how == "flip":
            data[at] ^= 0xA5
        elif how == "zero":
            data[at : at + 64] = bytes(len(data[at : at + 64]))
        else:
            del data[at:]
        path.write_bytes(bytes(data))
    for s in _read(data_dir, clock):
        i = dict(s.labels)["i"]
        original = dict(zip((T0 + np.arange(250) * 1000).tolist(), full[i], strict=True))
        for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True):
            assert original[t] == v
