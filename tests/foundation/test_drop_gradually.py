"""runtime.gil.drop_gradually: a large list is freed a slice at a time, so that a worker
thread that drops it lets the event loop have the interpreter lock between slices."""

from __future__ import annotations

from collections import Counter
from typing import Any

from runtime.gil import DROP_SLICE, drop_gradually


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
