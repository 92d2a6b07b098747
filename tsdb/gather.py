"""The read path: the rows of selected series gathered from blocks and the head.

Every result is one run per series, sorted by time: ``(ids, times, values, starts, ends)``
where series ``ids[i]`` owns rows ``starts[i]:ends[i]``.

Blocks almost always cover disjoint time ranges, one after the other, and each holds its rows
sorted by (series, time). Their runs are then placed straight into the output, with no sort.
Only overlapping sources (out-of-order writes) take the general path, which sorts and lets
the newest write win. An instant selector (``newest``) reads sources newest first, overlapping
or not, each only for the series whose newest row it may still hold: usually the newest
source holds them all and no other is read.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from tsdb.arrays import concat_ranges, windows
from tsdb.block import Block
from tsdb.codec import F64, I32, I64
from tsdb.head import Head
from tsdb.latest import LOST

T = TypeVar("T", bound=np.generic)

Gathered = tuple[I32, I64, F64, I64, I64]
"""Series ids, times, values, and each series' first and end row."""


@dataclass(frozen=True)
class Part:
    """One source's rows for some of the selected series: series ``pos[i]`` (a position in
    the selected ids, ascending) owns rows ``lo[i]:hi[i]``, whose times are
    ``offsets + base``."""

    pos: I64
    lo: I64
    hi: I64
    offsets: npt.NDArray[np.integer]
    base: int
    values: F64

    def times(self, rows: I64) -> I64:
        """Absolute timestamps of some rows."""
        out: I64 = self.offsets[rows].astype(np.int64) + self.base
        return out


def block_part(block: Block, sids: I32, start_ms: int, end_ms: int) -> Part:
    """The rows of ``block`` for the (sorted) ids, within ``[start_ms, end_ms]``."""
    pos, lo, hi = block.rows_in(sids, start_ms, end_ms)
    return Part(pos, lo, hi, block.offsets, block.mint, block.values)


def head_part(head: Head, sids: I32, start_ms: int, end_ms: int) -> Part:
    """The head's rows for the (sorted) ids within the range, sorted by (series, time);
    of two writes of one (series, time), the later one."""
    s, t, v = head.select(sids)
    keep = (t >= start_ms) & (t <= end_ms)
    if not keep.all():
        s, t, v = s[keep], t[keep], v[keep]
    s, t, v = _sorted_last_write_wins(s, t, v)
    lo, hi = runs(s)
    if len(lo) == len(sids):
        # Every id asked has rows here (the runs' ids are distinct ids among them).
        pos: I64 = np.arange(len(sids), dtype=np.int64)
    else:
        pos = np.searchsorted(sids, s[lo]).astype(np.int64)
    return Part(pos, lo, hi, t, 0, v)


def runs(s: I32) -> tuple[I64, I64]:
    """First and end row of each run of equal ids in ``s``."""
    if not len(s):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    bounds = np.flatnonzero(np.diff(s)) + 1
    starts = np.concatenate(([0], bounds)).astype(np.int64)
    ends = np.concatenate((bounds, [len(s)])).astype(np.int64)
    return starts, ends


def disjoint(spans: Sequence[tuple[int, int]]) -> bool:
    """Whether time ranges ``(mint, maxt)``, sorted by ``mint``, follow one another."""
    return all(a[1] < b[0] for a, b in itertools.pairwise(spans))


def merge_runs(parts: Sequence[Part], sids: I32) -> Gathered | None:
    """Runs of parts that are disjoint in time and given oldest first, per series, with no
    sort: each part's run lands after the runs of the parts before it."""
    n = len(sids)
    # A source without rows for any of the series (the head, for a scraped metric) would
    # make the layout look irregular.
    parts = [part for part in parts if len(part.pos)]
    regular = _regular(parts, n)
    if regular is not None:
        return _merge_regular(parts, sids, regular)
    totals = np.zeros(n, np.int64)
    for part in parts:
        totals[part.pos] += part.hi - part.lo
    rows = int(totals.sum())
    if not rows:
        return None
    fill = np.cumsum(totals) - totals
    t = np.empty(rows, np.int64)
    v = np.empty(rows, np.float64)
    for part in parts:
        counts = part.hi - part.lo
        some = counts > 0
        if not some.any():
            continue
        pos, lo, hi = part.pos[some], part.lo[some], part.hi[some]
        src = concat_ranges(lo, hi)
        at = fill[pos]
        dst = concat_ranges(at, at + counts[some])
        t[dst] = part.times(src)
        v[dst] = part.values[src]
        fill[pos] += counts[some]
    present = np.flatnonzero(totals)
    ends = np.cumsum(totals[present])
    starts = ends - totals[present]
    return sids[present], t, v, starts, ends


def _regular(parts: Sequence[Part], n: int) -> list[int] | None:
    """Per part, the number of rows each series has there, when every part holds every
    series with one same number of rows (steady scrapes): else None."""
    counts = []
    for part in parts:
        if len(part.pos) != n:
            return None
        c = part.hi - part.lo
        first = int(c[0]) if n else 0
        if n and not (c == first).all():
            return None
        counts.append(first)
    return counts


def _merge_regular(parts: Sequence[Part], sids: I32, counts: list[int]) -> Gathered | None:
    """:func:`merge_runs` when each series has ``counts[p]`` rows in part ``p``: each part
    fills a band of columns of an (series × rows) matrix."""
    n, width = len(sids), sum(counts)
    if not n or not width:
        return None
    starts = np.arange(n, dtype=np.int64) * width
    if width in counts:
        # One part holds every row: its gathers are the result.
        part = parts[counts.index(width)]
        t1 = np.add(_rows(part.offsets, part.lo, width), part.base, dtype=np.int64)
        v1 = _rows(part.values, part.lo, width)
        if np.may_share_memory(v1, part.values):
            v1 = v1.copy()  # the block's own array: answers get values of their own
        return sids, t1.reshape(-1), v1.reshape(-1), starts, starts + width
    t = np.empty((n, width), np.int64)
    v = np.empty((n, width), np.float64)
    at = 0
    for part, c in zip(parts, counts, strict=True):
        if not c:
            continue
        band = slice(at, at + c)
        np.add(_rows(part.offsets, part.lo, c), part.base, out=t[:, band], dtype=np.int64)
        v[:, band] = _rows(part.values, part.lo, c)
        at += c
    return sids, t.reshape(-1), v.reshape(-1), starts, starts + width


def _rows(a: npt.NDArray[T], lo: I64, width: int) -> npt.NDArray[T]:
    """``a[lo[i] : lo[i] + width]`` as row ``i``. Runs evenly spaced (a metric's series,
    created together, lie side by side in a block with as many rows each) are a strided view
    of ``a``: no gather, and no temporary copy before the rows are placed."""
    n = len(lo)
    if n > 1 and a.flags.c_contiguous and a.ndim == 1:
        gap = int(lo[1] - lo[0])
        first, last = int(lo[0]), int(lo[-1])
        even = gap > 0 and last == first + gap * (n - 1) and last + width <= len(a)
        if even and (n == 2 or bool((np.diff(lo) == gap).all())):
            step = a.strides[0]
            view: npt.NDArray[T] = np.ndarray(
                (n, width), a.dtype, a, first * step, (gap * step, step)
            )
            view.flags.writeable = False
            return view
    gathered: npt.NDArray[T] = windows(a, width)[lo]
    return gathered


def read_part(source: Block | Head, sids: I32, start_ms: int, end_ms: int) -> Part:
    """A block's or a head's rows for the (sorted) ids within the range."""
    if isinstance(source, Head):
        return head_part(source, sids, start_ms, end_ms)
    return block_part(source, sids, start_ms, end_ms)


def newest_rows(
    sources: Sequence[Block | Head], sids: I32, start_ms: int, end_ms: int
) -> Gathered | None:
    """Each series' newest row in the range from sources given in write order, whose times
    may overlap; of two rows at one time, the later write.

    Sources are read newest first (by their last time), each only for the series whose
    newest row it could still hold: those not found yet, or found at a time not after the
    source's last. Scrapes write every series newer than any block, so the newest source
    holds them all and no other is read, even when a rule group's writes, behind the latest
    scrape, make the sources overlap."""
    n = len(sids)
    best_t = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    best_by = np.full(n, -1, dtype=np.int64)
    best_v = np.empty(n, np.float64)
    tops = [min(source.maxt, end_ms) for source in sources]
    order = sorted(range(len(sources)), key=lambda i: (tops[i], i), reverse=True)
    for k, rank in enumerate(order):
        left: I64 | None = None
        if k:
            top = tops[rank]
            # Visited in this order, a series settled now is settled for every later source.
            open_ = (best_t < top) | ((best_t == top) & (best_by < rank))
            if not open_.any():
                break
            if not open_.all():
                left = np.flatnonzero(open_)
        part = read_part(sources[rank], sids if left is None else sids[left], start_ms, end_ms)
        some = part.hi > part.lo
        pos, rows = (part.pos, part.hi - 1) if some.all() else (part.pos[some], part.hi[some] - 1)
        if left is not None:
            pos = left[pos]
        t = part.times(rows)
        if k:
            later = (t > best_t[pos]) | ((t == best_t[pos]) & (rank > best_by[pos]))
            pos, rows, t = pos[later], rows[later], t[later]
        # (The first source read finds nothing before it: each of its rows is the newest.)
        best_t[pos] = t
        best_v[pos] = part.values[rows]
        best_by[pos] = rank
    return _one_row_each(sids, best_by >= 0, best_t, best_v)


def newest_known(
    sources: Sequence[Block | Head],
    sids: I32,
    start_ms: int,
    end_ms: int,
    latest: tuple[I64, F64, I64, F64],
) -> Gathered | None:
    """:func:`newest_rows`, given each series' newest and previous sample of all (see
    :mod:`tsdb.latest`): the newest one not after ``end_ms`` is the answer, and only series
    with neither known so are read from the sources."""
    t, v, t0, v0 = latest
    late = t > end_ms
    if late.any():
        t, v = np.where(late, t0, t), np.where(late, v0, v)
    usable = (t != LOST) & (t <= end_ms)
    found = usable & (t >= start_ms)
    if usable.all():
        return _one_row_each(sids, found, t, v)
    rest = np.flatnonzero(~usable)
    read = newest_rows(sources, sids[rest], start_ms, end_ms)
    if read is None:
        return _one_row_each(sids, found, t, v)
    t, v = t.copy(), v.copy()
    # The series read are some of those asked, in the same (sorted) order.
    at = rest[np.searchsorted(sids[rest], read[0])]
    t[at], v[at] = read[1], read[2]
    found[at] = True
    return _one_row_each(sids, found, t, v)


def _one_row_each(sids: I32, found: npt.NDArray[np.bool_], t: I64, v: F64) -> Gathered | None:
    """The found series' rows (``t[i]``, ``v[i]`` for series ``i``), one row each."""
    if len(found) and found.all():
        starts = np.arange(len(sids), dtype=np.int64)
        return sids, t, v, starts, starts + 1
    present = np.flatnonzero(found)
    if not len(present):
        return None
    starts = np.arange(len(present), dtype=np.int64)
    return sids[present], t[present], v[present], starts, starts + 1


def sort_order(sids: I32, ts: I64) -> I64:
    """A stable order by (series, time); concatenated sorted runs make it near-linear."""
    if len(ts) and int(ts.max()) - int(ts.min()) < 2**32:
        key = (sids.astype(np.int64) << 32) | (ts - ts.min())
        order: I64 = np.argsort(key, kind="stable")
        return order
    fallback: I64 = np.lexsort((ts, sids))
    return fallback


def _sorted_last_write_wins(s: I32, t: I64, v: F64) -> tuple[I32, I64, F64]:
    """Rows sorted by (series, time); of equal (series, time), the last one given."""
    # A head read for one scrape's series usually gives them in order already.
    if len(s) > 1 and not _in_order(s, t):
        order = sort_order(s, t)
        s, t, v = s[order], t[order], v[order]
    last = np.ones(len(s), dtype=bool)
    last[:-1] = (s[1:] != s[:-1]) | (t[1:] != t[:-1])
    if not last.all():
        s, t, v = s[last], t[last], v[last]
    return s, t, v


def _in_order(s: I32, t: I64) -> bool:
    """Whether rows are sorted by (series, time), equal pairs allowed."""
    later_series = s[1:] > s[:-1]
    if later_series.all():
        return True
    return bool((later_series | ((s[1:] == s[:-1]) & (t[1:] >= t[:-1]))).all())


def overlapping(parts: Sequence[Part], sids: I32) -> Gathered | None:
    """Rows of sources whose times overlap, given in write order (the head last), each
    narrowed to the range: sorted, and of two writes of one (series, time) the later one.

    Sources overlap when a writer is behind the others (a rule group writes at its slot,
    before the latest scrape), not because one series goes back in time: laid end to end
    in write order, as :func:`merge_runs` lays disjoint ones, nearly every series' rows
    are already in order. Only the series whose rows go back or repeat a time are sorted.
    """
    merged = merge_runs(parts, sids)
    if merged is None:
        return None
    s, t, v, starts, ends = merged
    if len(t) > 1:
        back = t[1:] <= t[:-1]
        # A series' first row may be older than the last row of the series before it.
        back[ends[:-1] - 1] = False
        if back.any():
            t, v, starts, ends = _sort_some(t, v, starts, ends, back)
    return s, t, v, starts, ends


def _sort_some(
    t: I64, v: F64, starts: I64, ends: I64, back: npt.NDArray[np.bool_]
) -> tuple[I64, F64, I64, I64]:
    """Runs sorted by time, for the series with a row in ``back`` (row ``i + 1`` not after
    row ``i``); of equal times the last row (the later write) is kept."""
    lengths = ends - starts
    seg = np.repeat(np.arange(len(starts), dtype=np.int32), lengths)
    bad = np.zeros(len(starts), dtype=bool)
    bad[seg[1:][back]] = True
    rows = np.flatnonzero(bad[seg])
    order = sort_order(seg[rows], t[rows])
    rows_t, rows_v, rows_seg = t[rows][order], v[rows][order], seg[rows][order]
    t, v = t.copy(), v.copy()
    t[rows], v[rows] = rows_t, rows_v
    keep = np.ones(len(t), dtype=bool)
    keep[rows[:-1]] = (rows_seg[1:] != rows_seg[:-1]) | (rows_t[1:] != rows_t[:-1])
    if keep.all():
        return t, v, starts, ends
    kept = np.bincount(seg[keep], minlength=len(starts)).astype(np.int64)
    new_ends: I64 = np.cumsum(kept)
    return t[keep], v[keep], new_ends - kept, new_ends
