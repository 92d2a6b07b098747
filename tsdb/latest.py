"""Each series' newest sample, kept up to date as samples are appended.

An instant selector reads only each series' newest sample at or before its time, and rule
groups evaluate hundreds of them a round over hundreds of thousands of series. Finding that
sample in the head and blocks means searching each source for every series. Appends already
pass every sample by: keeping the newest one per series id costs two array writes per
sample, and an instant read at a time no earlier than it is then two gathers. Series
written after the read's time (a scrape that lands while a rule group evaluates an earlier
slot) are read from the sources as before.

16 bytes per series id. Of two samples at one time the later write wins, as in reads.
"""

from __future__ import annotations

import numpy as np

from tsdb.codec import F64, I32, I64

UNKNOWN = np.iinfo(np.int64).min
"""The time of a series with no sample known here."""


class LatestSamples:
    """The newest time and value of every series id."""

    def __init__(self) -> None:
        self._t: I64 = np.full(1024, UNKNOWN, dtype=np.int64)
        self._v: F64 = np.zeros(1024, dtype=np.float64)

    @property
    def nbytes(self) -> int:
        """Bytes of memory held."""
        return self._t.nbytes + self._v.nbytes

    def note(self, sids: I32, ts: I64, values: F64) -> None:
        """Take in appended samples (in write order)."""
        if not len(sids):
            return
        top = int(sids.max())
        if top >= len(self._t):
            self._grow(top)
        newer = ts >= self._t[sids]
        if not newer.all():
            sids, ts, values = sids[newer], ts[newer], values[newer]
        self._t[sids] = ts
        self._v[sids] = values
        # A series twice in one batch: numpy does not say which write of a repeated index
        # lands, so check that each row's own sample is the one kept, and settle the others.
        if len(sids) > 1:
            lost = (self._t[sids] != ts) | (self._v[sids].view(np.int64) != values.view(np.int64))
            if lost.any():
                self._settle(sids, ts, values, lost)

    def _settle(self, sids: I32, ts: I64, values: F64, lost: np.ndarray) -> None:
        """Of the rows of series written more than once, keep the newest (the last written
        at equal times)."""
        again = np.isin(sids, sids[lost])
        rows = np.flatnonzero(again)
        # Sorted by series, then time, then write order: each series' last row wins.
        order = np.lexsort((rows, ts[rows], sids[rows]))
        rows = rows[order]
        last = np.ones(len(rows), dtype=bool)
        last[:-1] = sids[rows[1:]] != sids[rows[:-1]]
        keep = rows[last]
        self._t[sids[keep]] = ts[keep]
        self._v[sids[keep]] = values[keep]

    def note_one(self, sid: int, ts: int, value: float) -> None:
        """Take in one appended sample."""
        if sid >= len(self._t):
            self._grow(sid)
        if ts >= self._t[sid]:
            self._t[sid] = ts
            self._v[sid] = value

    def get(self, sids: I32) -> tuple[I64, F64]:
        """The newest time (:data:`UNKNOWN` if none) and value of each series."""
        inside = sids < len(self._t)
        if inside.all():
            return self._t[sids], self._v[sids]
        t = np.full(len(sids), UNKNOWN, dtype=np.int64)
        v = np.zeros(len(sids), dtype=np.float64)
        t[inside], v[inside] = self._t[sids[inside]], self._v[sids[inside]]
        return t, v

    def forget(self, sids: I32, upto: int) -> None:
        """Make unknown the series whose newest sample is at or before ``upto`` (their
        samples were deleted): reads then look in the sources."""
        sids = sids[sids < len(self._t)]
        gone = sids[self._t[sids] <= upto]
        self._t[gone] = UNKNOWN

    def _grow(self, top: int) -> None:
        size = max(2 * len(self._t), top + 1)
        t = np.full(size, UNKNOWN, dtype=np.int64)
        v = np.zeros(size, dtype=np.float64)
        t[: len(self._t)] = self._t
        v[: len(self._v)] = self._v
        self._t, self._v = t, v
