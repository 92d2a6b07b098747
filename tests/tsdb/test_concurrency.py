"""The store's concurrency contract: one thread appends while others read, seal and maintain;
reads see whole batches, and appends never wait for the background writer."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from runtime.clock import VirtualClock
from tsdb import Store, name_is

T0 = 1_700_000_000_000
SERIES = 200
ALL = (0, 2**62)


def _refs(store: Store) -> np.ndarray:
    return np.array(
        [store.ref({"__name__": "m", "i": str(i)}) for i in range(SERIES)], dtype=np.int32
    )


def _batch(store: Store, refs: np.ndarray, k: int) -> None:
    store.append_batch(refs, T0 + k * 1000, np.full(len(refs), float(k)))


def _in_thread(work: Callable[[], None], seconds: float = 30) -> None:
    """Run ``work`` in a thread; a hang (waiting on a lock it must not take) fails."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as e:  # reported below
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked behind the background writer"
    if errors:
        raise errors[0]


def test_appends_and_reads_never_wait_for_the_background_writer(
    open_store: Callable[..., Store],
) -> None:
    store = open_store(head_max_samples=1_000)
    refs = _refs(store)
    store._background = True  # as while run_flusher runs: appends leave slow work to it
    held = threading.Event()
    release = threading.Event()

    def writer_busy() -> None:
        # What a long compaction does: hold the writer's lock for as long as it takes.
        with store._io_lock:
            held.set()
            release.wait(60)

    busy = threading.Thread(target=writer_busy, daemon=True)
    busy.start()
    assert held.wait(10)
    try:

        def append_and_read() -> None:
            # 30 batches of 200: the head fills up (1,000) and is set aside six times.
            for k in range(30):
                _batch(store, refs, k)
            columns = store.select_columns([name_is("m")], *ALL)
            assert len(columns.labels) == SERIES
            assert columns.values.tolist() == [float(k) for _ in range(SERIES) for k in range(30)]
            assert store.stats().head_samples == 30 * SERIES

        _in_thread(append_and_read)
        assert store.stats().blocks == 0  # nothing sealed while the writer was busy
    finally:
        release.set()
        busy.join(10)
    store._background = False
    store.maintain()
    assert store.stats().blocks > 0
    columns = store.select_columns([name_is("m")], *ALL)
    assert columns.values.tolist() == [float(k) for _ in range(SERIES) for k in range(30)]


def test_reads_in_threads_see_whole_batches_while_appends_seal_and_maintain(
    open_store: Callable[..., Store], clock: VirtualClock
) -> None:
    store = open_store(head_max_samples=2_000)
    refs = _refs(store)
    batches = 400
    done = threading.Event()
    seen: list[int] = []
    failures: list[BaseException] = []

    def writer() -> None:
        for k in range(batches):
            _batch(store, refs, k)
        done.set()

    def maintainer() -> None:
        while not done.is_set():
            store.maintain()

    def reader() -> None:
        try:
            while not done.is_set():
                columns = store.select_columns([name_is("m")], *ALL)
                if not columns.labels:
                    continue
                counts = (columns.ends - columns.starts).tolist()
                # Every batch is all series at once: a read sees each series equally far.
                assert len(set(counts)) == 1 and len(columns.labels) == SERIES, counts[:5]
                m = counts[0]
                expected = np.tile(np.arange(m, dtype=np.float64), SERIES)
                assert np.array_equal(columns.values, expected)
                newest = store.select_coded([name_is("m")], *ALL, newest=True)
                # Newer than the read before it, and never a batch the writer has not made.
                assert set(newest.values.tolist()) <= set(map(float, range(batches)))
                seen.append(m)
        except BaseException as e:  # reported by the test thread
            failures.append(e)
            done.set()

    threads = [threading.Thread(target=f, daemon=True) for f in (writer, maintainer, reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    if failures:
        raise failures[0]
    assert seen and seen == sorted(seen)  # reads never go back in time
    assert store.stats().blocks > 0
    store.close()
    reopened = Store(store.settings, clock)
    try:
        columns = reopened.select_columns([name_is("m")], *ALL)
        assert (columns.ends - columns.starts).tolist() == [batches] * SERIES
    finally:
        reopened.close()
