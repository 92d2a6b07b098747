"""Series sampled at the same times share one search; the others are searched alone. Both
must find what a per-series search finds."""

from __future__ import annotations

import numpy as np

from promql.labelsets import LabelTable, Strings
from promql.selection import Selected, instant_vector, matrix


def _selected(runs: list[list[int]]) -> Selected:
    lengths = np.array([len(r) for r in runs], dtype=np.int64)
    ends = np.cumsum(lengths)
    ts = np.array([t for r in runs for t in r], dtype=np.int64)
    table = LabelTable.from_tuples([(("n", str(i)),) for i in range(len(runs))], Strings())
    return Selected(table, ts, ts.astype(np.float64), ends - lengths, ends)


def test_shared_times_and_odd_series_find_the_same_samples() -> None:
    grid = list(range(0, 600_000, 30_000))
    runs = [grid, grid, grid[3:], grid[:-2], [*grid[:5], 155_000, *grid[6:]], grid, [], grid]
    series = _selected(runs)
    times = np.arange(0, 700_000, 15_000, dtype=np.int64)
    vec = instant_vector(series, times, 60_000)
    m = matrix(series, times, 120_000)
    for i, run in enumerate(runs):
        ts = np.array(run, dtype=np.int64)
        hi = np.searchsorted(ts, times, side="right")
        lo = np.searchsorted(ts, times - 120_000, side="right")
        start = int(series.starts[i])
        assert (m.hi[i] == start + hi).all() and (m.lo[i] == start + lo).all()
        newest = np.where(hi > 0, ts[np.maximum(hi - 1, 0)] if len(ts) else 0, -(10**12))
        want = (hi > 0) & (newest > times - 60_000)
        row = [r for r, lb in enumerate(vec.table.tuples()) if lb == (("n", str(i)),)]
        got = vec.present[row[0]] if row else np.zeros(len(times), bool)
        assert (got == want).all()
        if row:
            assert (vec.values[row[0]][want] == newest[want]).all()
