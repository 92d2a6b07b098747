"""Quantiles of classic histogram buckets: of one histogram, and of many at many steps.

:func:`quantiles` is :func:`bucket_quantile` for every (histogram, step)
cell, computed on arrays: each cell's buckets are one row of a padded matrix, sorted by
upper bound. The monotonicity fix is a running maximum there, except where a count sits
above the maximum so far by less than the tolerance Prometheus allows, or a count is NaN;
those few cells go through the scalar function, so results are the same to the bit.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from promql.values import F64, I64

Mask = npt.NDArray[np.bool_]

_SMALL_DELTA = 1e-12
_MIN_NORMAL = 2.2250738585072014e-308
_MAX_FLOAT = 1.7976931348623157e308


def _almost_equal(a: float, b: float, epsilon: float) -> bool:
    if a == b:
        return True
    diff = abs(a - b)
    total = abs(a) + abs(b)
    if a == 0 or b == 0 or total < _MIN_NORMAL:
        return diff < epsilon * _MIN_NORMAL
    return diff / min(total, _MAX_FLOAT) < epsilon


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> tuple[float, bool]:
    """The ``q`` quantile from ``(upper bound, cumulative count)`` pairs, and whether the
    counts had to be made monotonic."""
    if math.isnan(q):
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    buckets = sorted(buckets, key=lambda b: b[0])
    if not buckets or not math.isinf(buckets[-1][0]):
        return math.nan, False
    merged: list[list[float]] = []
    for upper, count in buckets:
        if merged and merged[-1][0] == upper:
            merged[-1][1] += count
        else:
            merged.append([upper, count])
    forced = False
    prev = merged[0][1]
    for bucket in merged[1:]:
        cur = bucket[1]
        if cur == prev:
            continue
        if _almost_equal(prev, cur, _SMALL_DELTA) or cur < prev:
            forced = forced or (cur < prev and not _almost_equal(prev, cur, _SMALL_DELTA))
            bucket[1] = prev
            continue
        prev = cur
    if len(merged) < 2:
        return math.nan, forced
    observations = merged[-1][1]
    if observations == 0 or math.isnan(observations):
        return math.nan, forced
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0], forced
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0], forced
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * _divide(rank, count), forced


def _divide(a: float, b: float) -> float:
    """``a / b`` as Go divides floats: by zero gives an infinity or NaN, not an error."""
    if b == 0:
        return (
            math.nan
            if a == 0 or math.isnan(a)
            else math.copysign(math.inf, a) * (math.copysign(1.0, b))
        )
    return a / b


def _almost_equal_arrays(a: F64, b: F64) -> Mask:
    """:func:`_almost_equal` element-wise, with Prometheus' tolerance."""
    diff = np.abs(a - b)
    total = np.abs(a) + np.abs(b)
    tiny = (a == 0) | (b == 0) | (total < _MIN_NORMAL)
    near: Mask = np.where(
        tiny, diff < _SMALL_DELTA * _MIN_NORMAL, diff / np.minimum(total, _MAX_FLOAT) < _SMALL_DELTA
    )
    same: Mask = (a == b) | near
    return same


def quantiles(q: F64, steps: int, cell: I64, upper: F64, count: F64) -> tuple[I64, F64, Mask]:
    """Per cell (``histogram * steps + step``), the ``q[step]`` quantile of its bucket
    entries ``(cell, upper bound, count)``, given in input order; returns the cells (sorted),
    their quantiles and whether each needed its counts made monotonic."""
    given = cell, upper, count
    order = np.lexsort((upper, cell))
    cell, upper, count = cell[order], upper[order], count[order]
    n = len(cell)
    starts_run = np.ones(n, dtype=bool)
    starts_run[1:] = (cell[1:] != cell[:-1]) | (upper[1:] != upper[:-1])
    run_starts = np.flatnonzero(starts_run)
    # Buckets with the same bound are added up, left to right as the scalar code does.
    counts = np.add.reduceat(count, run_starts) if n else count
    cells = cell[run_starts]
    uppers = upper[run_starts]
    new_cell = np.ones(len(cells), dtype=bool)
    new_cell[1:] = cells[1:] != cells[:-1]
    cell_starts = np.flatnonzero(new_cell)
    sizes = np.diff(np.append(cell_starts, len(cells)))
    out_cells = cells[cell_starts]
    m = len(out_cells)
    if not m:
        return out_cells, np.zeros(0), np.zeros(0, dtype=bool)
    width = int(sizes.max())
    col = np.arange(len(cells)) - np.repeat(cell_starts, sizes)
    row = np.repeat(np.arange(m), sizes)
    valid = np.zeros((m, width), dtype=bool)
    valid[row, col] = True
    c = np.full((m, width), -np.inf)
    c[row, col] = counts
    u = np.full((m, width), np.inf)
    u[row, col] = uppers
    qs = np.asarray(q, dtype=np.float64)[out_cells % steps]
    rows = np.arange(m)
    last = sizes - 1
    columns = np.arange(width)
    with np.errstate(all="ignore"):
        fixed = np.maximum.accumulate(c, axis=1)
        before = np.concatenate([c[:, :1], fixed[:, :-1]], axis=1)
        later = valid & (columns > 0)
        near = _almost_equal_arrays(before, c)
        slow = np.isnan(np.where(valid, c, 0.0)).any(axis=1)
        slow |= np.isnan(np.where(valid, u, 0.0)).any(axis=1)
        slow |= (later & (c > before) & near).any(axis=1)
        forced = (later & (c < before) & ~near).any(axis=1)
        observations = fixed[rows, last]
        rank = qs * observations
        searched = valid & (columns < last[:, None]) & (fixed >= rank[:, None])
        b = np.where(searched.any(axis=1), searched.argmax(axis=1), last)
        below = np.maximum(b - 1, 0)
        end = u[rows, b]
        start = np.where(b > 0, u[rows, below], 0.0)
        low_count = np.where(b > 0, fixed[rows, below], 0.0)
        bucket_count = np.where(b > 0, fixed[rows, b] - low_count, fixed[rows, b])
        local_rank = np.where(b > 0, rank - low_count, rank)
        value = start + (end - start) * (local_rank / bucket_count)
        # Later rules win, in the reverse order of the scalar code's early returns.
        value = np.where((b == 0) & (u[:, 0] <= 0), u[:, 0], value)
        value = np.where(b == last, u[rows, np.maximum(last - 1, 0)], value)
        value = np.where((observations == 0) | np.isnan(observations), np.nan, value)
        value = np.where(sizes < 2, np.nan, value)
        no_inf = ~np.isinf(u[rows, last])
        value = np.where(no_inf, np.nan, value)
        value = np.where(qs > 1, np.inf, value)
        value = np.where(qs < 0, -np.inf, value)
        value = np.where(np.isnan(qs), np.nan, value)
        forced &= ~(no_inf | np.isnan(qs) | (qs < 0) | (qs > 1))
    result = np.asarray(value, dtype=np.float64)
    if slow.any():
        # In input order, as the scalar code sorts them itself.
        by_cell = np.argsort(given[0], kind="stable")
        raw_cell, raw_upper, raw_count = (a[by_cell] for a in given)
        lo = np.searchsorted(raw_cell, out_cells, side="left")
        hi = np.searchsorted(raw_cell, out_cells, side="right")
        for i in np.flatnonzero(slow).tolist():
            a, z = int(lo[i]), int(hi[i])
            buckets = list(zip(raw_upper[a:z].tolist(), raw_count[a:z].tolist(), strict=True))
            result[i], forced[i] = bucket_quantile(float(qs[i]), buckets)
    return out_cells, result, forced
