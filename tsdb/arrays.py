"""Small numpy helpers shared by the index and the read path."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

I64 = npt.NDArray[np.int64]
T = TypeVar("T", bound=np.generic)


def concat_ranges(lo: npt.NDArray[np.integer], hi: npt.NDArray[np.integer]) -> I64:
    """The concatenation of ``arange(lo[i], hi[i])`` for every i, without a Python loop."""
    counts = (hi - lo).astype(np.int64)
    total = int(counts.sum())
    if not total:
        return np.empty(0, np.int64)
    shifts = np.repeat(lo.astype(np.int64) - (np.cumsum(counts) - counts), counts)
    rows: I64 = np.arange(total, dtype=np.int64) + shifts
    return rows


def position(
    a: npt.NDArray[np.integer], value: int, side: Literal["left", "right"] = "left"
) -> int:
    """Where ``value`` goes in the sorted ``a``. The value is given in the array's own type:
    to compare with a Python int, numpy converts the whole array first (a millisecond
    for two million ids, where the search itself takes microseconds)."""
    return int(np.searchsorted(a, a.dtype.type(value), side=side))


def windows(a: npt.NDArray[T], width: int) -> npt.NDArray[T]:
    """A read-only view whose row ``i`` is ``a[i : i + width]``: what
    ``sliding_window_view`` gives, made in microseconds rather than tens of them (it is
    made once per block and selection, thousands of times a round)."""
    if not a.flags.c_contiguous or a.ndim != 1 or len(a) < width:
        view: npt.NDArray[T] = sliding_window_view(a, width)
        return view
    step = a.strides[0]
    made: npt.NDArray[T] = np.ndarray((len(a) - width + 1, width), a.dtype, a, 0, (step, step))
    made.flags.writeable = False
    return made


def distinct(a: npt.NDArray[T]) -> npt.NDArray[T]:
    """The distinct values of a 1-d array, sorted: ``np.unique(a)`` by a sort.

    numpy 2.3+ finds the distinct values of an integer array by hashing, which at hundreds
    of thousands of distinct ids is 20 times slower than sorting, and holds the interpreter
    lock all along (a sort and a comparison release it)."""
    if len(a) < 2:
        return a.copy()
    ordered = np.sort(a)
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    out: npt.NDArray[T] = ordered[keep]
    return out


def distinct_inverse(a: npt.NDArray[T]) -> tuple[npt.NDArray[T], I64]:
    """``np.unique(a, return_inverse=True)`` of a 1-d integer array. Where the values span
    a range not much wider than the array (label codes of a few values, group numbers), by
    marking them in a table of that range: no sort, four times faster than numpy's."""
    if not len(a):
        return a.copy(), np.empty(0, np.int64)
    low = int(a.min())
    span = int(a.max()) - low + 1
    if span > 4 * len(a) + 4096:
        values, inverse = np.unique(a, return_inverse=True)
        return values, inverse.reshape(len(a))
    rel = a - low
    seen = np.zeros(span, dtype=bool)
    seen[rel] = True
    rank = np.cumsum(seen) - 1
    found: npt.NDArray[T] = (np.flatnonzero(seen) + low).astype(a.dtype)
    inverse_of: I64 = rank[rel]
    return found, inverse_of


class Column:
    """A growing 1-d numpy column that readers in other threads may view without a lock.

    Appends fill spare capacity past the end, which no reader's view covers, and only then
    publish the new length; a full column grows into a copy 1.25 times its size. So a view
    taken before an append stays valid and unchanged, and no append has to copy around a
    reader (an ``array.array`` cannot grow while a numpy view pins its buffer)."""

    __slots__ = ("_dtype", "_state")

    def __init__(self, dtype: type[np.generic], values: npt.ArrayLike = ()) -> None:
        data = np.asarray(values, dtype=dtype)
        buf = np.empty(max(16, len(data)), dtype=dtype)
        buf[: len(data)] = data
        self._dtype = dtype
        # One tuple, swapped whole: a reader never pairs one buffer with another's length.
        self._state: tuple[npt.NDArray[Any], int] = (buf, len(data))

    def __len__(self) -> int:
        return self._state[1]

    def view(self) -> npt.NDArray[Any]:
        """The values so far, read-only; later appends do not change it."""
        buf, n = self._state
        out = buf[:n]
        out.flags.writeable = False
        return out

    def last(self) -> int:
        """The last value (the column must not be empty)."""
        buf, n = self._state
        return int(buf[n - 1])

    def extend(self, values: npt.ArrayLike) -> None:
        """Append values (converted to the column's type)."""
        more = np.asarray(values, dtype=self._dtype)
        buf, n = self._state
        end = n + len(more)
        if end > len(buf):
            grown = np.empty(max(end, len(buf) + len(buf) // 4), dtype=self._dtype)
            grown[:n] = buf[:n]
            buf = grown
        buf[n:end] = more
        self._state = (buf, end)
