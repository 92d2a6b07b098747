"""The head: where new samples land, in arrival order, until it is sealed into a block.

Samples are kept in fixed-size columnar chunks (series id, 32-bit time offset from the head's
base, value): 16 bytes a sample, appended with numpy slice copies, so a batch costs a few
memory copies whatever its size.

One writer appends (under the store's lock); readers in other threads read a
:meth:`Head.frozen` view taken under that lock, without holding it while they read.

Rule groups select from the head hundreds of times a round, a few series each out of
hundreds of thousands of rows. So each chunk keeps its rows sorted by series (made by the
first reader that finds it missing or stale, shared by the head and its views): a
selection searches that order, and scans only the rows appended since it was made.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tsdb.arrays import concat_ranges, position
from tsdb.codec import F64, I32, I64, empty_columns

CHUNK = 1 << 17
# Rows appended after a chunk's order was made are scanned; past this many (or an eighth
# of the chunk), the order is made again.
_UNSORTED_ROWS = 4096
# Fewer wanted ids than the rows over this are searched for one by one; more are marked in
# a table, which the sorted rows read in order.
_SEARCH_BELOW = 16
_I32_MIN = -(2**31)
_I32_MAX = 2**31 - 1


class Head:
    """An append-only buffer of samples of many series."""

    def __init__(self) -> None:
        self._sids: list[I32] = []
        self._rel: list[I32] = []
        self._vals: list[F64] = []
        self.count = 0
        self.base: int | None = None
        self.mint = 0
        self.maxt = 0
        # Per chunk: (rows covered, those rows' positions in series order, their ids in
        # that order). Rows never change once written, so an order stays valid for the
        # rows it covers. Shared with frozen views (see the module docstring).
        self._orders: list[tuple[int, I64, I32] | None] = []

    @property
    def nbytes(self) -> int:
        """Bytes of memory held by the chunks."""
        return len(self._sids) * CHUNK * 16

    def fits(self, mint: int, maxt: int) -> bool:
        """Whether timestamps in ``[mint, maxt]`` can be stored relative to the base."""
        if self.base is None:
            return maxt - mint <= _I32_MAX
        return mint - self.base >= _I32_MIN and maxt - self.base <= _I32_MAX

    def append(self, sids: I32, ts: I64, values: F64) -> None:
        """Append a batch; the caller has checked :meth:`fits`."""
        n = len(sids)
        if n == 0:
            return
        lo, hi = int(ts.min()), int(ts.max())
        if self.base is None:
            self.base = lo
            self.mint, self.maxt = lo, hi
        else:
            self.mint, self.maxt = min(self.mint, lo), max(self.maxt, hi)
        rel = ts - self.base
        done = 0
        while done < n:
            chunk, at = divmod(self.count, CHUNK)
            if chunk == len(self._sids):
                self._sids.append(np.empty(CHUNK, np.int32))
                self._rel.append(np.empty(CHUNK, np.int32))
                self._vals.append(np.empty(CHUNK, np.float64))
            take = min(n - done, CHUNK - at)
            self._sids[chunk][at : at + take] = sids[done : done + take]
            self._rel[chunk][at : at + take] = rel[done : done + take]
            self._vals[chunk][at : at + take] = values[done : done + take]
            done += take
            self.count += take

    def append_one(self, sid: int, ts: int, value: float) -> None:
        """Append a single sample; the caller has checked :meth:`fits`."""
        if self.base is None:
            self.base = self.mint = self.maxt = ts
        elif ts < self.mint:
            self.mint = ts
        elif ts > self.maxt:
            self.maxt = ts
        chunk, at = divmod(self.count, CHUNK)
        if chunk == len(self._sids):
            self._sids.append(np.empty(CHUNK, np.int32))
            self._rel.append(np.empty(CHUNK, np.int32))
            self._vals.append(np.empty(CHUNK, np.float64))
        self._sids[chunk][at] = sid
        self._rel[chunk][at] = ts - self.base
        self._vals[chunk][at] = value
        self.count += 1

    def columns(self, lo: int = 0, hi: int | None = None) -> tuple[I32, I64, F64]:
        """Copies of rows ``lo:hi`` in arrival order, timestamps absolute."""
        hi = self.count if hi is None else hi
        if hi <= lo or self.base is None:
            return empty_columns()
        parts_s, parts_t, parts_v = [], [], []
        for chunk in range(lo // CHUNK, (hi - 1) // CHUNK + 1):
            a = max(lo - chunk * CHUNK, 0)
            b = min(hi - chunk * CHUNK, CHUNK)
            parts_s.append(self._sids[chunk][a:b])
            parts_t.append(self._rel[chunk][a:b])
            parts_v.append(self._vals[chunk][a:b])
        ts = np.concatenate(parts_t).astype(np.int64) + self.base
        return np.concatenate(parts_s), ts, np.concatenate(parts_v)

    def select(self, sids: I32) -> tuple[I32, I64, F64]:
        """Rows of the given (sorted) series ids; each series' rows in arrival order."""
        if self.base is None or not len(sids):
            return empty_columns()
        parts_s, parts_t, parts_v = [], [], []
        for chunk in range(len(self._sids)):
            fill = min(self.count - chunk * CHUNK, CHUNK)
            rows = self._rows_of(chunk, fill, sids)
            if len(rows):
                parts_s.append(self._sids[chunk][rows])
                parts_t.append(self._rel[chunk][rows])
                parts_v.append(self._vals[chunk][rows])
        if not parts_s:
            return empty_columns()
        ts = np.concatenate(parts_t).astype(np.int64) + self.base
        return np.concatenate(parts_s), ts, np.concatenate(parts_v)

    def _rows_of(self, chunk: int, fill: int, sids: I32) -> I64:
        """The rows of chunk ``chunk`` (of which ``fill`` are written) that belong to the
        (sorted) ids: by series, each series' in arrival order."""
        order = self._order(chunk, fill)
        upto, positions, keys = order if order is not None else (0, _NO_ROWS, _NO_IDS)
        if not len(keys):
            rows = _NO_ROWS
        elif len(sids) * _SEARCH_BELOW < len(keys):
            lo = np.searchsorted(keys, sids, side="left")
            hi = np.searchsorted(keys, sids, side="right")
            rows = positions[concat_ranges(lo, hi)]
        else:
            rows = positions[_marked(keys, sids)]
        if upto < fill:
            # Written after the order was made: a scan of those rows only.
            tail = self._sids[chunk][upto:fill]
            later = np.flatnonzero(_member(tail, sids)) + upto
            rows = np.concatenate((rows, later)) if len(rows) else later
        return rows

    def _order(self, chunk: int, fill: int) -> tuple[int, I64, I32] | None:
        """The chunk's rows in series order, made again when too many rows are newer
        than it; None for a chunk too small to need one."""
        orders = self._orders
        while len(orders) <= chunk:
            orders.append(None)
        order = orders[chunk]
        if order is not None and order[0] <= fill and fill - order[0] <= _stale_after(fill):
            return order
        if fill <= _UNSORTED_ROWS:
            return None
        col = self._sids[chunk][:fill]
        positions = np.argsort(col, kind="stable").astype(np.int64)
        made = (fill, positions, col[positions])
        # A view taken earlier may hold fewer rows than the order a newer reader made; it
        # leaves that order in place and makes its own.
        if order is None or order[0] < fill:
            orders[chunk] = made
        return made

    def frozen(self) -> Head:
        """A read-only view of the rows written so far, for a reader in another thread.

        Rows below :attr:`count` are never rewritten and chunks are only ever added, so the
        view shares the chunks and is bounded by the count it was taken at; appends that
        follow are invisible to it. Take it under the owner's lock."""
        view = Head()
        used = -(-self.count // CHUNK)
        view._sids, view._rel, view._vals = self._sids[:used], self._rel[:used], self._vals[:used]
        view._orders = self._orders
        view.count, view.base, view.mint, view.maxt = self.count, self.base, self.mint, self.maxt
        return view


_NO_ROWS: I64 = np.zeros(0, dtype=np.int64)
_NO_IDS: I32 = np.zeros(0, dtype=np.int32)


def _stale_after(fill: int) -> int:
    return max(_UNSORTED_ROWS, fill // 8)


def _member(values: I32, sids: I32) -> npt.NDArray[np.bool_]:
    """Whether each value is one of the (sorted, non-empty) ids."""
    at = np.minimum(np.searchsorted(sids, values), len(sids) - 1)
    hit: npt.NDArray[np.bool_] = sids[at] == values
    return hit


def _marked(keys: I32, sids: I32) -> I64:
    """Where the sorted ``keys`` are one of the (sorted, non-empty) ids: a table of the ids
    over the span both cover, read at every key of that span."""
    low, high = max(int(keys[0]), int(sids[0])), min(int(keys[-1]), int(sids[-1]))
    if low > high:
        return _NO_ROWS
    a, b = position(keys, low), position(keys, high + 1)
    want = np.zeros(high - low + 1, dtype=bool)
    want[sids[position(sids, low) : position(sids, high, side="right")] - low] = True
    found: I64 = np.flatnonzero(want[keys[a:b] - low]) + a
    return found
