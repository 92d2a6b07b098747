"""Functions of range vectors: ``rate``, ``increase``, ``*_over_time`` and friends."""

from __future__ import annotations

import math

import numpy as np

from promql.context import EvalContext
from promql.errors import EvaluationError
from promql.values import F64, I64, Mask, Matrix, Vector
from promql.windows import (
    careful_window_sum,
    counter_corrections,
    first_index,
    last_index,
    pair_count,
    per_window,
    regression,
    window_reduce,
)
from tsdb.arrays import distinct

_COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")


def _vector(m: Matrix, values: F64, present: Mask, keep_name: bool = False) -> Vector:
    drop = m.drop_name.copy() if keep_name else np.ones(len(m), dtype=bool)
    vec = Vector(m.table, np.where(present, values, 0.0), present, drop)
    keep = present.any(axis=1)
    return vec if keep.all() else vec.take(keep)


def _note_non_counter(m: Matrix, ctx: EvalContext) -> None:
    if not m.from_selector or not len(m):
        return
    codes = m.table.column("__name__")
    value = m.table.strings.value
    # A sort of the names only when there are several (a selector names one metric).
    names = codes[:1] if codes.min() == codes.max() else distinct(codes)
    suspect = [c for c in names.tolist() if c and not value(c).endswith(_COUNTER_SUFFIXES)]
    if suspect:
        rows = np.flatnonzero(np.isin(codes, suspect))
        # The first such series, as a scan in series order would report.
        name = value(int(codes[rows[0]]))
        ctx.annotations.info(
            "metric might not be a counter, name does not end in "
            f'_total/_sum/_count/_bucket: "{name}" {ctx.position(name)}'
        )


def extrapolated(m: Matrix, ctx: EvalContext, counter: bool, per_second: bool) -> Vector:
    """``rate``, ``increase`` and ``delta``: the change over the window, extrapolated to its
    edges the way Prometheus does (at most half a sample interval beyond the samples,
    and for counters never below zero)."""
    if counter:
        _note_non_counter(m, ctx)
    counts = m.counts
    ok = counts >= 2
    fi, li = first_index(m), last_index(m)
    first, last = m.vals[fi], m.vals[li]
    t_first = m.ts[fi].astype(np.float64) if len(m.ts) else np.zeros(fi.shape)
    t_last = m.ts[li].astype(np.float64) if len(m.ts) else np.zeros(li.shape)
    result = last - first
    corr = counter_corrections(m) if counter else None
    if corr is not None:
        result = result + corr[li] - corr[fi]
    with np.errstate(divide="ignore", invalid="ignore"):
        end = m.times.astype(np.float64)[None, :]
        start = end - m.range_ms
        to_start = (t_first - start) / 1000.0
        to_end = (end - t_last) / 1000.0
        sampled = (t_last - t_first) / 1000.0
        avg_gap = sampled / np.maximum(counts - 1, 1)
        threshold = avg_gap * 1.1
        to_start = np.where(to_start >= threshold, avg_gap / 2, to_start)
        if counter:
            to_zero = sampled * (first / result)
            clamp = (result > 0) & (first >= 0) & (to_zero < to_start)
            to_start = np.where(clamp, to_zero, to_start)
        to_end = np.where(to_end >= threshold, avg_gap / 2, to_end)
        factor = (sampled + to_start + to_end) / sampled
        if per_second:
            factor = factor / (m.range_ms / 1000.0)
        values = result * factor
    return _vector(m, values, ok)


def instant_delta(m: Matrix, ctx: EvalContext, per_second: bool) -> Vector:
    """``irate`` and ``idelta``: from the last two samples of the window."""
    if per_second:
        _note_non_counter(m, ctx)
    ok = m.counts >= 2
    li = last_index(m)
    pi = np.clip(li - 1, 0, None)
    last, prev = m.vals[li], m.vals[pi]
    if not per_second:
        return _vector(m, last - prev, ok)
    dv = np.where(last < prev, last, last - prev)
    dt = (m.ts[li] - m.ts[pi]).astype(np.float64) / 1000.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return _vector(m, dv / dt, ok)


def changes(m: Matrix) -> Vector:
    """How often the value changed within the window."""
    v = m.vals
    ind = np.zeros(len(v), dtype=bool)
    if len(v) > 1:
        a, b = v[1:], v[:-1]
        ind[1:] = (a != b) & ~(np.isnan(a) & np.isnan(b))
    return _vector(m, pair_count(ind, m), m.counts >= 1)


def resets(m: Matrix) -> Vector:
    """How often the value dropped within the window."""
    v = m.vals
    ind = np.zeros(len(v), dtype=bool)
    if len(v) > 1:
        ind[1:] = v[1:] < v[:-1]
    return _vector(m, pair_count(ind, m), m.counts >= 1)


def sum_over_time(m: Matrix) -> Vector:
    """Sum of the window's values."""
    s, ok = careful_window_sum(m)
    return _vector(m, s, ok)


def count_over_time(m: Matrix) -> Vector:
    """Number of samples in the window."""
    c = m.counts
    return _vector(m, c.astype(np.float64), c > 0)


def avg_over_time(m: Matrix) -> Vector:
    """Mean of the window's values (without overflowing for huge values)."""
    s, ok = careful_window_sum(m)
    c = np.maximum(m.counts, 1).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        mean = s / c
        overflow = np.isinf(s) & ok
        if overflow.any():
            scaled, _ = window_reduce(np.add, m.vals / 1e300, m)
            mean = np.where(overflow & np.isfinite(scaled), scaled / c * 1e300, mean)
    return _vector(m, mean, ok)


def min_over_time(m: Matrix) -> Vector:
    """Smallest value in the window (NaN only if all are NaN)."""
    r, ok = window_reduce(np.fmin, m.vals, m)
    return _vector(m, r, ok)


def max_over_time(m: Matrix) -> Vector:
    """Largest value in the window (NaN only if all are NaN)."""
    r, ok = window_reduce(np.fmax, m.vals, m)
    return _vector(m, r, ok)


def last_over_time(m: Matrix) -> Vector:
    """The window's newest value; keeps the metric name."""
    return _vector(m, m.vals[last_index(m)], m.counts > 0, keep_name=True)


def first_over_time(m: Matrix) -> Vector:
    """The window's oldest value; keeps the metric name."""
    return _vector(m, m.vals[first_index(m)], m.counts > 0, keep_name=True)


def ts_of_last_over_time(m: Matrix) -> Vector:
    """Timestamp (seconds) of the window's newest sample."""
    return _vector(m, m.ts[last_index(m)] / 1000.0, m.counts > 0)


def ts_of_first_over_time(m: Matrix) -> Vector:
    """Timestamp (seconds) of the window's oldest sample."""
    return _vector(m, m.ts[first_index(m)] / 1000.0, m.counts > 0)


def _ts_of_extreme(m: Matrix, largest: bool) -> Vector:
    def pick(ts: I64, vals: F64) -> float:
        best, at = vals[0], ts[0]
        for t, v in zip(ts.tolist(), vals.tolist(), strict=True):
            better = (v >= best) if largest else (v <= best)
            if better or math.isnan(best):
                best, at = v, t
        return float(at) / 1000.0

    out, ok = per_window(m, pick)
    return _vector(m, out, ok)


def ts_of_max_over_time(m: Matrix) -> Vector:
    """Timestamp (seconds) of the window's largest value (the newest among equals)."""
    return _ts_of_extreme(m, True)


def ts_of_min_over_time(m: Matrix) -> Vector:
    """Timestamp (seconds) of the window's smallest value (the newest among equals)."""
    return _ts_of_extreme(m, False)


def present_over_time(m: Matrix) -> Vector:
    """1 for every series with a sample in the window."""
    c = m.counts
    return _vector(m, np.ones(c.shape), c > 0)


def _variance(vals: F64) -> float:
    mean = float(np.mean(vals))
    if math.isinf(mean) or math.isnan(mean):
        return math.nan
    # A second pass corrects the mean's rounding, so equal values give exactly zero.
    mean += float(np.mean(vals - mean))
    return float(np.mean((vals - mean) ** 2))


def stdvar_over_time(m: Matrix) -> Vector:
    """Population variance of the window's values."""
    out, ok = per_window(m, lambda _t, v: _variance(v))
    return _vector(m, out, ok)


def stddev_over_time(m: Matrix) -> Vector:
    """Population standard deviation of the window's values."""
    out, ok = per_window(m, lambda _t, v: math.sqrt(_variance(v)))
    return _vector(m, out, ok)


def quantile_of(q: float, values: F64) -> float:
    """Prometheus' quantile: linear interpolation between closest ranks."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    # NaN sorts first, as in Prometheus.
    nans = np.isnan(values)
    ordered = np.concatenate([values[nans], np.sort(values[~nans])])
    n = len(ordered)
    rank = q * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return float(ordered[lower] * (1 - weight) + ordered[upper] * weight)


def quantile_over_time(q: F64, m: Matrix, ctx: EvalContext) -> Vector:
    """The ``q`` quantile of the window's values (``q`` may vary by step)."""
    _warn_quantile(q, ctx)
    out = np.zeros(m.lo.shape)
    ok = m.counts > 0
    for i, t in zip(*np.nonzero(ok), strict=True):
        out[i, t] = quantile_of(float(q[t]), m.vals[m.lo[i, t] : m.hi[i, t]])
    return _vector(m, out, ok)


def _warn_quantile(q: F64, ctx: EvalContext) -> None:
    for value in np.unique(q).tolist():
        if math.isnan(value) or value < 0 or value > 1:
            ctx.annotations.warn(
                f"quantile value should be between 0 and 1, got {_go_float(value)} "
                f"{ctx.position('quantile')}"
            )


def _go_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:g}"


def mad_over_time(m: Matrix) -> Vector:
    """Median absolute deviation of the window's values."""

    def mad(_t: I64, v: F64) -> float:
        if np.isnan(v).any():
            return math.nan
        median = quantile_of(0.5, v)
        return quantile_of(0.5, np.abs(v - median))

    out, ok = per_window(m, mad)
    return _vector(m, out, ok)


def deriv(m: Matrix) -> Vector:
    """Per-second slope of a least-squares line through the window."""
    first_ts = m.ts[first_index(m)].astype(np.float64) if len(m.ts) else np.zeros(m.lo.shape)
    slope, _, ok = regression(m, first_ts)
    return _vector(m, slope, ok)


def predict_linear(m: Matrix, horizon: F64, step_times: I64) -> Vector:
    """The least-squares line through the window, evaluated ``horizon`` seconds after the
    step's own time (not the ``@`` time, as in Prometheus)."""
    at = np.broadcast_to(step_times.astype(np.float64)[None, :], m.lo.shape)
    slope, intercept, ok = regression(m, at)
    return _vector(m, slope * horizon[None, :] + intercept, ok)


def double_exponential_smoothing(m: Matrix, sf: F64, tf: F64) -> Vector:
    """Holt's linear smoothing of the window; smoothing and trend factors in (0, 1)."""
    for name, factor in (("smoothing", sf), ("trend", tf)):
        bad = [f for f in factor.tolist() if not 0 < f < 1]
        if bad:
            raise EvaluationError(
                f"invalid {name} factor. Expected: 0 < {name[0]}f < 1, got: {bad[0]:f}"
            )
    out = np.zeros(m.lo.shape)
    ok = m.counts >= 2
    for i, t in zip(*np.nonzero(ok), strict=True):
        v = m.vals[m.lo[i, t] : m.hi[i, t]].tolist()
        out[i, t] = holt(v, float(sf[t]), float(tf[t]))
    return _vector(m, out, ok)


def holt(values: list[float], sf: float, tf: float) -> float:
    """The smoothed level after the last value (Prometheus' double exponential smoothing)."""
    level, trend = values[1], values[1] - values[0]
    for x in values[2:]:
        previous = level
        level = sf * x + (1 - sf) * (level + trend)
        trend = tf * (level - previous) + (1 - tf) * trend
    return level


def absent_over_time(m: Matrix) -> F64:
    """Per step, 1 where no series has a sample in the window, else NaN."""
    any_present = (m.counts > 0).any(axis=0) if len(m) else np.zeros(len(m.times), dtype=bool)
    return np.where(any_present, np.nan, 1.0)
