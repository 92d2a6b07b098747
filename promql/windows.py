"""Reductions over the windows of a :class:`~promql.values.Matrix`, vectorised."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from promql.values import F64, I64, Mask, Matrix
from tsdb.arrays import concat_ranges


def window_reduce(ufunc: np.ufunc, data: F64, m: Matrix) -> tuple[F64, Mask]:
    """``ufunc.reduce(data[lo:hi])`` for every non-empty window; shape ``(n, T)``."""
    lo, hi = m.lo.ravel(), m.hi.ravel()
    nonempty = hi > lo
    out = np.zeros(lo.shape)
    if nonempty.any() and len(data):
        idx = np.empty(2 * int(nonempty.sum()), dtype=np.int64)
        idx[0::2] = lo[nonempty]
        idx[1::2] = hi[nonempty]
        padded = np.append(data, 0.0)
        out[nonempty] = ufunc.reduceat(padded, idx)[0::2]
    return out.reshape(m.lo.shape), nonempty.reshape(m.lo.shape)


def first_index(m: Matrix) -> I64:
    """Index of each window's first sample (clipped to a valid index when empty)."""
    return _clip(m, m.lo)


def last_index(m: Matrix) -> I64:
    """Index of each window's last sample (clipped to a valid index when empty)."""
    return _clip(m, m.hi - 1)


def _clip(m: Matrix, idx: I64) -> I64:
    clipped: I64 = np.clip(idx, 0, max(len(m.ts) - 1, 0))
    return clipped


def pair_count(indicator: Mask, m: Matrix) -> F64:
    """How many consecutive sample pairs inside each window have ``indicator`` set.

    ``indicator[i]`` describes the pair ``(i - 1, i)``; pairs across two series never
    count because the first sample of a series has no pair inside any window.
    """
    cum = np.concatenate(([0], np.cumsum(indicator, dtype=np.int64)))
    # Pairs (j-1, j) with lo < j < hi: cum[hi] - cum[lo + 1].
    lo = np.minimum(m.lo + 1, m.hi)
    result: F64 = (cum[m.hi] - cum[lo]).astype(np.float64)
    return result


def counter_corrections(m: Matrix) -> F64 | None:
    """Per sample, the running sum of values lost to counter resets (within its series);
    None when no series resets, as counters almost never do (a comparison and a test, not
    a running sum over every sample of a dashboard's hour)."""
    vals = m.vals
    if len(vals) < 2:
        return None
    reset = vals[1:] < vals[:-1]
    # A series' first sample follows the last of the series before it: no reset there.
    firsts = m.starts[(m.starts > 0) & (m.starts < len(vals))]
    reset[firsts - 1] = False
    if not reset.any():
        return None
    drop = np.zeros(len(vals))
    drop[1:] = np.where(reset, vals[:-1], 0.0)
    corrections: F64 = np.cumsum(drop)
    return corrections


def per_window(
    m: Matrix, fn: Callable[[I64, F64], float | None], min_samples: int = 1
) -> tuple[F64, Mask]:
    """``fn(timestamps, values)`` for every window with at least ``min_samples`` samples.

    A Python call per window: for functions without a vectorised form.
    """
    out = np.zeros(m.lo.shape)
    present = np.zeros(m.lo.shape, dtype=bool)
    counts = m.counts
    ts, vals = m.ts, m.vals
    for i, t in zip(*np.nonzero(counts >= min_samples), strict=True):
        a, b = int(m.lo[i, t]), int(m.hi[i, t])
        r = fn(ts[a:b], vals[a:b])
        if r is not None:
            out[i, t] = r
            present[i, t] = True
    return out, present


def regression(m: Matrix, at_ms: F64, min_samples: int = 2) -> tuple[F64, F64, Mask]:
    """Least-squares slope (per second) and intercept at ``at_ms[i, t]`` of every window
    with at least ``min_samples`` (at least one) samples; a window of equal values has
    slope 0."""
    slope = np.zeros(m.lo.shape)
    intercept = np.zeros(m.lo.shape)
    ok = m.counts >= max(1, min_samples)
    windows = np.flatnonzero(ok)
    if not len(windows):
        return slope, intercept, ok
    lo, hi = m.lo.ravel()[windows], m.hi.ravel()[windows]
    counts = (hi - lo).astype(np.int64)
    # The windows' samples laid end to end, window i from starts[i]: sums by window are
    # then sums of runs, which add.reduceat makes without a scatter.
    starts = np.cumsum(counts) - counts
    if int(starts[-1] + counts[-1]) == len(m.ts) and bool((lo == starts).all()):
        # One window per series, of all its samples (an instant query): no gather.
        x, y = m.ts.astype(np.float64), m.vals
    else:
        idx = concat_ranges(lo, hi)
        x, y = m.ts[idx].astype(np.float64), m.vals[idx]
    n = counts.astype(np.float64)
    x -= np.repeat(at_ms.ravel()[windows], counts)
    x /= 1000.0
    # Two passes, as the per-window code did: means first, then centred sums.
    mx = np.add.reduceat(x, starts) / n
    my = np.add.reduceat(y, starts) / n
    dx = x - np.repeat(mx, counts)
    cov = np.add.reduceat(dx * (y - np.repeat(my, counts)), starts)
    var = np.add.reduceat(dx * dx, starts)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(var != 0, cov / var, np.nan)
    first = y[starts]
    same = ~np.logical_or.reduceat(y != np.repeat(first, counts), starts)
    s = np.where(same, 0.0, s)
    b = np.where(same, first, my - s * mx)
    slope.ravel()[windows] = s
    intercept.ravel()[windows] = b
    return slope, intercept, ok


def careful_window_sum(m: Matrix) -> tuple[F64, Mask]:
    """Window sums that survive cancellation (``1, 1e100, 1, -1e100`` sums to 2): windows
    whose magnitudes dwarf their sum are summed again exactly."""
    s, ok = window_reduce(np.add, m.vals, m)
    size, _ = window_reduce(np.add, np.abs(m.vals), m)
    suspect = ok & np.isfinite(size) & (size * 1e-15 > np.abs(s))
    for i, t in zip(*np.nonzero(suspect), strict=True):
        s[i, t] = kahan_sum(m.vals[m.lo[i, t] : m.hi[i, t]].tolist())
    return s, ok


def kahan_sum(values: list[float]) -> float:
    """Neumaier's compensated sum, step for step as Prometheus computes it, so results
    agree where even compensation falls short."""
    total = compensation = 0.0
    for x in values:
        t = total + x
        if math.isinf(t):
            compensation = 0.0
        elif abs(total) >= abs(x):
            compensation += (total - t) + x
        else:
            compensation += (x - t) + total
        total = t
    return total + compensation
