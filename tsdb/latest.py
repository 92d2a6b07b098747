"""Each series' two newest samples, kept up to date as samples are appended.

An instant selector reads only each series' newest sample at or before its time, and rule
groups evaluate hundreds of them a round over hundreds of thousands of series. Finding that
sample in the head and blocks means searching each source for every series. Appends already
pass every sample by: keeping the newest two per series id costs a few array writes per
sample, and an instant read is then a few gathers. Two, because a rule group evaluates its
slot while scrapes go on: a series scraped since then has its newest sample after the read's
time, and the one before is the answer. Only series with both after the read's time (a
query into the past) are read from the sources.

36 bytes per series id. Of two samples at one time the later write wins, as in reads.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

from tsdb.codec import F64, I32, I64

NONE = np.iinfo(np.int64).min
"""The time where a series has no (newest or previous) sample."""
LOST = NONE + 1
"""The time where a sample may exist but is not known here (its samples were deleted)."""


class LatestSamples:
    """The newest and the previous time and value of every series id."""

    def __init__(self) -> None:
        self._t: I64 = np.full(1024, NONE, dtype=np.int64)
        self._v: F64 = np.zeros(1024, dtype=np.float64)
        self._t0: I64 = np.full(1024, NONE, dtype=np.int64)
        self._v0: F64 = np.zeros(1024, dtype=np.float64)
        # Scratch for finding a series named twice in one batch.
        self._mark: I32 = np.zeros(1024, dtype=np.int32)
        # No sample lost (see :meth:`forget`) is after this: a write into a series whose
        # newest was lost is its newest only if it is later.
        self._lost_upto = NONE

    @property
    def nbytes(self) -> int:
        """Bytes of memory held."""
        arrays = (self._t, self._v, self._t0, self._v0, self._mark)
        return sum(a.nbytes for a in arrays)

    def note(self, sids: I32, ts: I64, values: F64) -> None:
        """Take in appended samples, given in write order."""
        n = len(sids)
        if not n:
            return
        top = int(sids.max())
        if top >= len(self._t):
            self._grow(top)
        if n > 1 and self._repeated(sids):
            for layer in _layers(sids):
                self._take(sids[layer], ts[layer], values[layer])
        else:
            self._take(sids, ts, values)

    def note_one(self, sid: int, ts: int, value: float) -> None:
        """Take in one appended sample."""
        self.note(
            np.array([sid], dtype=np.int32),
            np.array([ts], dtype=np.int64),
            np.array([value], dtype=np.float64),
        )

    def _repeated(self, sids: I32) -> bool:
        """Whether some series is named more than once."""
        rows = np.arange(len(sids), dtype=np.int32)
        self._mark[sids] = rows
        # Of two rows of one series only one number lands: the other reads it back wrong.
        return not np.array_equal(self._mark[sids], rows)

    def _take(self, sids: I32, ts: I64, values: F64) -> None:
        """Samples of distinct series."""
        last = self._t[sids]
        newer = ts > last
        if self._lost_upto != NONE:
            # Samples of the series may survive up to the lost one, which is unknown.
            newer &= (last != LOST) | (ts > self._lost_upto)
        if newer.any():
            s = sids[newer]
            self._t0[s], self._v0[s] = last[newer], self._v[s]
            self._t[s], self._v[s] = ts[newer], values[newer]
            if newer.all():
                return
        older = ~newer
        s, t, v = sids[older], ts[older], values[older]
        same = t == last[older]
        if same.any():
            self._v[s[same]] = v[same]
        # Written into the past: it becomes the previous sample if it is after that one
        # (unless that one is lost: something unknown may lie between).
        previous = self._t0[s]
        between = ~same & (t >= previous) & (previous != LOST)
        if between.any():
            self._t0[s[between]], self._v0[s[between]] = t[between], v[between]

    def get(self, sids: I32) -> tuple[I64, F64, I64, F64]:
        """Each series' newest and previous time and value (times :data:`NONE` or
        :data:`LOST` where there are none, or none known)."""
        inside = sids < len(self._t)
        if inside.all():
            return self._t[sids], self._v[sids], self._t0[sids], self._v0[sids]
        t, t0 = np.full(len(sids), NONE, np.int64), np.full(len(sids), NONE, np.int64)
        v, v0 = np.zeros(len(sids)), np.zeros(len(sids))
        s = sids[inside]
        t[inside], v[inside], t0[inside], v0[inside] = (
            self._t[s],
            self._v[s],
            self._t0[s],
            self._v0[s],
        )
        return t, v, t0, v0

    def forget(self, sids: I32, upto: int, newest: bool = True) -> None:
        """Samples at or before ``upto`` of these series were deleted (or, without
        ``newest``, some of them but never a series' newest, as downsampling does): such a
        sample becomes lost, and reads look in the sources."""
        sids = sids[sids < len(self._t)]
        self._lost_upto = max(self._lost_upto, upto)
        times = (self._t, self._t0) if newest else (self._t0,)
        for t in times:
            t[sids[(t[sids] <= upto) & (t[sids] != NONE)]] = LOST

    def _grow(self, top: int) -> None:
        size = max(2 * len(self._t), top + 1)
        self._t, self._t0 = _grown(self._t, size, NONE), _grown(self._t0, size, NONE)
        self._v, self._v0 = _grown(self._v, size, 0.0), _grown(self._v0, size, 0.0)
        self._mark = _grown(self._mark, size, 0)


_A = TypeVar("_A", bound=np.generic)


def _grown(a: npt.NDArray[_A], size: int, fill: float) -> npt.NDArray[_A]:
    out = np.full(size, fill, dtype=a.dtype)
    out[: len(a)] = a
    return out


def _layers(sids: I32) -> list[npt.NDArray[np.intp]]:
    """Rows split so that no series is twice in a layer: each series' first row in the
    first layer, its second in the second..., so that layers taken in turn keep every
    series' write order."""
    order = np.argsort(sids, kind="stable")
    ordered = sids[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    run_of = np.repeat(starts, np.diff(np.r_[starts, len(sids)]))
    rank = np.arange(len(sids)) - run_of
    return [order[rank == k] for k in range(int(rank.max()) + 1)]
