"""runtime.gil.drop_gradually: a large list is freed a slice at a time, so that a worker
thread that drops it lets the event loop have the interpreter lock between slices; and
FreedGradually, a dict whose values go so in a worker thread once the dict is dropped."""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

from runtime.gil import DROP_SLICE, FreedGradually, drop_gradually


class _Noted:
    """Notes, as it is freed, how long the list it was in still is."""

    def __init__(self, seen: list[int], items: list[Any]) -> None:
        self._seen = seen
        self._items = items

    def __del__(self) -> None:
        self._seen.append(len(self._items))


def test_a_large_list_is_freed_a_slice_at_a_time_from_the_end() -> None:
    seen: list[int] = []
    items: list[Any] = []
    items.extend(_Noted(seen, items) for _ in range(2 * DROP_SLICE + 10))
    drop_gradually(items)
    assert items == []
    # Each slice's items are freed together, after the list has shrunk by the slice: all
    # at once (a plain drop) would show one length.
    assert Counter(seen) == {DROP_SLICE + 10: DROP_SLICE, 10: DROP_SLICE, 0: 10}


def test_a_short_list_is_freed_in_one_step() -> None:
    seen: list[int] = []
    items: list[Any] = []
    items.extend(_Noted(seen, items) for _ in range(3))
    drop_gradually(items)
    assert items == [] and seen == [0, 0, 0]


class _Freed:
    """Notes the thread that frees it, and how many of its kind were freed before it."""

    def __init__(self, freed: list[tuple[int, int]], done: threading.Event, last: int) -> None:
        self._freed = freed
        self._done = done
        self._last = last

    def __del__(self) -> None:
        self._freed.append((threading.get_ident(), len(self._freed)))
        if len(self._freed) == self._last:
            self._done.set()


def test_a_dropped_snapshot_is_freed_in_a_worker_thread() -> None:
    freed: list[tuple[int, int]] = []
    done = threading.Event()
    snapshot = FreedGradually({i: _Freed(freed, done, 39) for i in range(40)}, per_slice=16)
    kept = snapshot[0]
    del snapshot  # the last reference, on this (the loop's) thread
    assert done.wait(30), f"only {len(freed)} of 39 freed"
    threads = {thread for thread, _ in freed}
    assert threading.get_ident() not in threads and len(threads) == 1
    # One value is still held: its refcount, not the dict, decides when it goes.
    assert len(freed) == 39 and kept is not None


def test_a_snapshot_dropped_in_a_forked_child_is_freed_there_and_then() -> None:
    freed: list[tuple[int, int]] = []
    snapshot = FreedGradually({i: _Freed(freed, threading.Event(), 0) for i in range(3)}, 16)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        del snapshot
        os._exit(0 if [t for t, _ in freed] == [threading.get_ident()] * 3 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert freed == []
