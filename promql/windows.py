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


def window_members(m: Matrix, windows: I64) -> tuple[I64, I64]:
    """The samples of some windows (flat indices into ``m.lo``) laid end to end: for each
    sample, its window's position in ``windows`` and its index in ``m.ts``."""
    lo, hi = m.lo.ravel()[windows], m.hi.ravel()[windows]
    owner = np.repeat(np.arange(len(windows), dtype=np.int64), hi - lo)
    return owner, concat_ranges(lo, hi)


def regression(m: Matrix, at_ms: F64, min_samples: int = 2) -> tuple[F64, F64, Mask]:
    """Least-squares slope (per second) and intercept at ``at_ms[i, t]`` of every window
    with at least ``min_samples`` samples; a window of equal values has slope 0."""
    slope = np.zeros(m.lo.shape)
    intercept = np.zeros(m.lo.shape)
    ok = m.counts >= min_samples
    windows = np.flatnonzero(ok)
    if not len(windows):
        return slope, intercept, ok
    owner, idx = window_members(m, windows)
    n = (m.hi.ravel() - m.lo.ravel())[windows].astype(np.float64)
    x = (m.ts[idx].astype(np.float64) - at_ms.ravel()[windows][owner]) / 1000.0
    y = m.vals[idx]
    # Two passes, as the per-window code did: means first, then centred sums.
    mx = np.bincount(owner, weights=x, minlength=len(windows)) / n
    my = np.bincount(owner, weights=y, minlength=len(windows)) / n
    dx = x - mx[owner]
    cov = np.bincount(owner, weights=dx * (y - my[owner]), minlength=len(windows))
    var = np.bincount(owner, weights=dx * dx, minlength=len(windows))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(var != 0, cov / var, np.nan)
    first = y[np.r_[0, np.cumsum(n.astype(np.int64))[:-1]]]
    same = np.bincount(owner, weights=(y != first[owner]), minlength=len(windows)) == 0
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
