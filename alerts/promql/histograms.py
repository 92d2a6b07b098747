"""``histogram_quantile`` over classic histograms (``_bucket`` series with an ``le`` label)."""

from __future__ import annotations

import math

import numpy as np

from alerts.promql.context import EvalContext
from alerts.promql.labelsets import I64, LabelTable
from alerts.promql.values import F64, Vector, get_label

_SMALL_DELTA = 1e-12


def _almost_equal(a: float, b: float, epsilon: float) -> bool:
    if a == b:
        return True
    diff = abs(a - b)
    total = abs(a) + abs(b)
    if a == 0 or b == 0 or total < 2.2250738585072014e-308:
        return diff < epsilon * 2.2250738585072014e-308
    return diff / min(total, 1.7976931348623157e308) < epsilon


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
    return start + (end - start) * (rank / count), forced


def histogram_quantile(q: F64, vec: Vector, ctx: EvalContext) -> Vector:
    """Per step and per histogram (series equal but for ``le``), the ``q`` quantile."""
    for value in np.unique(q).tolist():
        if math.isnan(value) or not 0 <= value <= 1:
            shown = "NaN" if math.isnan(value) else f"{value:g}"
            ctx.annotations.warn(
                f"quantile value should be between 0 and 1, got {shown} "
                f"{ctx.position('histogram_quantile')}"
            )
    keys, groups = _bucket_groups(vec, ctx)
    values = np.zeros((len(keys), vec.steps))
    present = np.zeros((len(keys), vec.steps), dtype=bool)
    for g, (rows, uppers) in enumerate(groups):
        for t in np.flatnonzero(vec.present[rows].any(axis=0)).tolist():
            here = vec.present[rows, t]
            buckets = [
                (uppers[j], float(vec.values[rows[j], t])) for j in np.flatnonzero(here).tolist()
            ]
            value, forced = bucket_quantile(float(q[t]), buckets)
            if forced:
                name = get_label(vec.table.take(rows[:1]).tuples()[0], "__name__")
                ctx.annotations.info(
                    "input to histogram_quantile needed to be fixed for monotonicity (see "
                    "https://prometheus.io/docs/prometheus/latest/querying/functions/"
                    f'#histogram_quantile) for metric name "{name}" '
                    f"{ctx.position(name or 'histogram_quantile')}"
                )
            values[g, t] = value
            present[g, t] = True
    return Vector(keys, values, present, np.ones(len(keys), dtype=bool))


def bucket_fraction(lower: float, upper: float, buckets: list[tuple[float, float]]) -> float:
    """Estimated share of observations between ``lower`` and ``upper``, interpolating
    linearly inside buckets."""
    buckets = sorted(buckets, key=lambda b: b[0])
    if not buckets or not math.isinf(buckets[-1][0]):
        return math.nan
    merged: list[list[float]] = []
    for bound, count in buckets:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    total = merged[-1][1]
    if total == 0 or math.isnan(lower) or math.isnan(upper):
        return math.nan
    if lower >= upper:
        return 0.0
    rank = 0.0
    lower_rank = upper_rank = math.nan
    for i, (bound, count) in enumerate(merged):
        start = merged[i - 1][0] if i > 0 else (0.0 if bound > 0 else -math.inf)

        def interpolate(
            v: float,
            start: float = start,
            bound: float = bound,
            count: float = count,
            rank: float = rank,
        ) -> float:
            if math.isinf(bound):
                return rank
            if math.isinf(start):
                return count
            return rank + (count - rank) * (v - start) / (bound - start)

        if math.isnan(lower_rank) and start >= lower:
            lower_rank = rank
        if math.isnan(upper_rank) and start >= upper:
            upper_rank = rank
        if math.isnan(lower_rank) and start < lower < bound:
            lower_rank = interpolate(lower)
        if math.isnan(upper_rank) and start < upper < bound:
            upper_rank = interpolate(upper)
        if not math.isnan(lower_rank) and not math.isnan(upper_rank):
            break
        rank = count
    if math.isnan(lower_rank) or lower_rank > total:
        lower_rank = total
    if math.isnan(upper_rank) or upper_rank > total:
        upper_rank = total
    return (upper_rank - lower_rank) / total


def _bucket_groups(
    vec: Vector, ctx: EvalContext
) -> tuple[LabelTable, list[tuple[I64, list[float]]]]:
    """Histograms: the label sets (``le`` removed) and, for each, its bucket series' rows
    and upper bounds."""
    table = vec.table
    le = table.column("le")
    distinct, inverse = np.unique(le, return_inverse=True)
    inverse = inverse.reshape(len(le))
    bounds = np.full(len(distinct), np.nan)
    valid = np.zeros(len(distinct), dtype=bool)
    for g, code in enumerate(distinct.tolist()):
        try:
            bounds[g] = float(table.strings.value(code) if code else "")
            valid[g] = True
        except ValueError:
            continue
    ok = valid[inverse]
    for i in np.flatnonzero(~ok).tolist():
        lb = table.take([i]).tuples()[0]
        le_text, name = get_label(lb, "le"), get_label(lb, "__name__")
        ctx.annotations.warn(
            f'bucket label "le" is missing or has a malformed value of "{le_text}" for '
            f'metric name "{name}" {ctx.position(name or "histogram")}'
        )
    rows = np.flatnonzero(ok)
    # The name stays in the key (marked for removal): two histograms that differ only
    # by name collide when names are removed, as in Prometheus.
    keys = table.take(rows).drop(["le"])
    first, ids = keys.factorize()
    order = np.argsort(ids, kind="stable")
    cuts = np.flatnonzero(np.diff(ids[order])) + 1
    upper = bounds[inverse]
    groups = [(rows[part], upper[rows[part]].tolist()) for part in np.split(order, cuts)]
    if not len(rows):
        groups = []
    return keys.take(first).distinct(), groups


def histogram_fraction(lower: F64, upper: F64, vec: Vector, ctx: EvalContext) -> Vector:
    """Per step and per histogram, the share of observations in ``[lower, upper]``."""
    keys, groups = _bucket_groups(vec, ctx)
    values = np.zeros((len(keys), vec.steps))
    present = np.zeros((len(keys), vec.steps), dtype=bool)
    for g, (rows, uppers) in enumerate(groups):
        for t in np.flatnonzero(vec.present[rows].any(axis=0)).tolist():
            here = np.flatnonzero(vec.present[rows, t]).tolist()
            buckets = [(uppers[j], float(vec.values[rows[j], t])) for j in here]
            values[g, t] = bucket_fraction(float(lower[t]), float(upper[t]), buckets)
            present[g, t] = True
    return Vector(keys, values, present, np.ones(len(keys), dtype=bool))
