"""``histogram_quantile`` over classic histograms (``_bucket`` series with an ``le`` label)."""

from __future__ import annotations

import math

import numpy as np

from promql.bucket_quantiles import quantiles
from promql.context import EvalContext
from promql.labelsets import I64, LabelTable
from promql.values import F64, Vector, get_label
from tsdb.arrays import distinct_inverse


def histogram_quantile(q: F64, vec: Vector, ctx: EvalContext) -> Vector:
    """Per step and per histogram (series equal but for ``le``), the ``q`` quantile."""
    for value in np.unique(q).tolist():
        if math.isnan(value) or not 0 <= value <= 1:
            shown = "NaN" if math.isnan(value) else f"{value:g}"
            ctx.annotations.warn(
                f"quantile value should be between 0 and 1, got {shown} "
                f"{ctx.position('histogram_quantile')}"
            )
    keys, rows, ids, first, uppers = _bucket_rows(vec, ctx)
    steps = vec.steps
    values = np.zeros((len(keys), steps))
    present = np.zeros((len(keys), steps), dtype=bool)
    at_row, at_step = np.nonzero(vec.present[rows])
    cells, result, forced = quantiles(
        q,
        steps,
        ids[at_row] * steps + at_step,
        uppers[at_row],
        vec.values[rows[at_row], at_step],
    )
    values[cells // steps, cells % steps] = result
    present[cells // steps, cells % steps] = True
    # One note per metric name, as Prometheus' annotations are a set of messages.
    fixed = np.unique(cells[forced] // steps)
    names = np.unique(vec.table.column("__name__")[rows[first[fixed]]])
    for code in names.tolist():
        name = vec.table.strings.value(code) if code else ""
        ctx.annotations.info(
            "input to histogram_quantile needed to be fixed for monotonicity (see "
            "https://prometheus.io/docs/prometheus/latest/querying/functions/"
            f'#histogram_quantile) for metric name "{name}" '
            f"{ctx.position(name or 'histogram_quantile')}"
        )
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


def _bucket_rows(vec: Vector, ctx: EvalContext) -> tuple[LabelTable, I64, I64, I64, F64]:
    """Histograms: the label sets (``le`` removed); the rows of bucket series (valid
    ``le``), each one's histogram, each histogram's first row (in those rows), and each
    row's upper bound."""
    table = vec.table
    le = table.column("le")
    distinct, inverse = distinct_inverse(le)
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
    return keys.take(first).distinct(), rows, ids, first, bounds[inverse][rows]


def _bucket_groups(
    vec: Vector, ctx: EvalContext
) -> tuple[LabelTable, list[tuple[I64, list[float]]]]:
    """:func:`_bucket_rows` as, for each histogram, its bucket series' rows and bounds."""
    keys, rows, ids, _, uppers = _bucket_rows(vec, ctx)
    if not len(rows):
        return keys, []
    order = np.argsort(ids, kind="stable")
    cuts = np.flatnonzero(np.diff(ids[order])) + 1
    groups = [(rows[part], uppers[part].tolist()) for part in np.split(order, cuts)]
    return keys, groups


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
