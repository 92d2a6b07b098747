"""PromQL functions by name: each takes evaluated arguments and returns a value.

Functions of range vectors are in :mod:`promql.range_functions`; this module holds
the element-wise, time, sorting and label functions, and the registry
(:data:`FUNCTIONS`) the engine dispatches on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import promql_parser

from promql import range_functions as rf
from promql.context import EvalContext
from promql.errors import EvaluationError
from promql.forecast import forecast
from promql.histograms import histogram_fraction, histogram_quantile
from promql.labels_functions import label_join, label_replace
from promql.values import F64, Matrix, Scalar, String, Value, Vector, drop_name
from tsdb.labels import Labels

Handler = Callable[[list[Value], EvalContext, Any], Value]


@dataclass(frozen=True)
class Function:
    """A function the engine can call: its body, and whether its value depends on the
    evaluation's times (not only on its arguments)."""

    name: str
    body: Handler
    reads_time: bool = False


FUNCTIONS: dict[str, Function] = {}


def register(name: str, reads_time: bool = False) -> Callable[[Handler], Handler]:
    """Add a function to :data:`FUNCTIONS` under ``name``; ``reads_time``: its value
    depends on the evaluation's times or bounds, or on more than its arguments."""

    def wrap(body: Handler) -> Handler:
        FUNCTIONS[name] = Function(name, body, reads_time)
        return body

    return wrap


def lookup(name: str) -> Function:
    """The function called ``name``; the error lists the known names."""
    try:
        return FUNCTIONS[name]
    except KeyError:
        known = ", ".join(sorted(FUNCTIONS))
        raise EvaluationError(f"function {name!r} is not implemented; known: {known}") from None


def _vec(v: Value) -> Vector:
    assert isinstance(v, Vector), type(v)
    return v


def _mat(v: Value) -> Matrix:
    assert isinstance(v, Matrix), type(v)
    return v


def _scalar(v: Value) -> F64:
    assert isinstance(v, Scalar), type(v)
    return v.values


def _str(v: Value) -> str:
    assert isinstance(v, String), type(v)
    return v.value


def _map(vec: Vector, fn: Callable[[F64], F64]) -> Vector:
    with np.errstate(all="ignore"):
        values = fn(vec.values)
    return Vector(vec.table, values, vec.present, np.ones(len(vec), dtype=bool))


def _elementwise(name: str, fn: Callable[[F64], F64]) -> None:
    def body(args: list[Value], ctx: EvalContext, node: Any) -> Value:
        return _map(_vec(args[0]), fn)

    register(name)(body)


def _sgn(v: F64) -> F64:
    return np.where(np.isnan(v), v, np.sign(v))


def _round_half_up(v: F64) -> F64:
    return np.floor(v + 0.5)


_ELEMENTWISE: dict[str, Callable[[F64], F64]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sgn": _sgn,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "deg": np.degrees,
    "rad": np.radians,
}
for _name, _fn in _ELEMENTWISE.items():
    _elementwise(_name, _fn)


@register("round")
def _round(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    to = _scalar(args[1]) if len(args) > 1 else np.ones(ctx.steps)
    inverse = 1.0 / to
    return _map(_vec(args[0]), lambda v: np.floor(v * inverse + 0.5) / inverse)


@register("clamp")
def _clamp(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    vec, lo, hi = _vec(args[0]), _scalar(args[1]), _scalar(args[2])
    out = _map(vec, lambda v: np.fmax(lo, np.fmin(hi, v)))
    out.values = np.where(np.isnan(vec.values), vec.values, out.values)
    out.present = vec.present & ~(hi < lo)[None, :]
    return out


@register("clamp_min")
def _clamp_min(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    lo = _scalar(args[1])
    return _map(_vec(args[0]), lambda v: np.where(np.isnan(v), v, np.fmax(v, lo)))


@register("clamp_max")
def _clamp_max(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    hi = _scalar(args[1])
    return _map(_vec(args[0]), lambda v: np.where(np.isnan(v), v, np.fmin(v, hi)))


@register("pi")
def _pi(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return Scalar(np.full(ctx.steps, math.pi))


@register("time", reads_time=True)
def _time(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return Scalar(ctx.times / 1000.0)


@register("vector")
def _vector(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    s = _scalar(args[0])
    return Vector(
        [()], s[None, :].copy(), np.ones((1, ctx.steps), dtype=bool), np.zeros(1, dtype=bool)
    )


@register("scalar")
def _scalar_fn(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    vec = _vec(args[0])
    if not len(vec):
        return Scalar(np.full(ctx.steps, math.nan))
    one = vec.present.sum(axis=0) == 1
    value = np.where(vec.present, vec.values, 0.0).sum(axis=0)
    return Scalar(np.where(one, value, math.nan))


@register("timestamp", reads_time=True)
def _timestamp(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    vec = _vec(args[0])
    if vec.sample_ts is not None:
        values = vec.sample_ts / 1000.0
    else:
        values = np.broadcast_to(ctx.times / 1000.0, vec.values.shape).copy()
    return Vector(vec.table, values, vec.present, np.ones(len(vec), dtype=bool))


def _date_part(name: str, part: Callable[[Any], F64]) -> None:
    def body(args: list[Value], ctx: EvalContext, node: Any) -> Value:
        if args:
            vec = _vec(args[0])
        else:
            vec = Vector(
                [()],
                (ctx.times / 1000.0)[None, :],
                np.ones((1, ctx.steps), dtype=bool),
                np.zeros(1, dtype=bool),
            )

        def compute(v: F64) -> F64:
            finite = np.isfinite(v)
            seconds = np.where(finite, v, 0).astype(np.int64)
            stamp = seconds.astype("datetime64[s]")
            return np.where(finite, part(stamp).astype(np.float64), np.nan)

        return _map(vec, compute)

    register(name, reads_time=True)(body)


def _field(stamp: Any, unit: str, within: str) -> Any:
    return (stamp.astype(f"datetime64[{unit}]") - stamp.astype(f"datetime64[{within}]")).astype(
        np.int64
    )


def _days_in_month(stamp: Any) -> Any:
    month = stamp.astype("datetime64[M]")
    return ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64)


_date_part("year", lambda s: s.astype("datetime64[Y]").astype(np.int64) + 1970)
_date_part("month", lambda s: _field(s, "M", "Y") + 1)
_date_part("day_of_month", lambda s: _field(s, "D", "M") + 1)
_date_part("day_of_year", lambda s: _field(s, "D", "Y") + 1)
_date_part("day_of_week", lambda s: (s.astype("datetime64[D]").astype(np.int64) + 4) % 7)
_date_part("hour", lambda s: _field(s, "h", "D"))
_date_part("minute", lambda s: _field(s, "m", "h"))
_date_part("days_in_month", _days_in_month)


def _sorted(vec: Vector, key: Callable[[int], Any]) -> Vector:
    order = sorted(range(len(vec)), key=key)
    return vec.take(np.array(order, dtype=np.int64))


def _sort_warning(ctx: EvalContext, name: str) -> None:
    if ctx.range_query:
        ctx.annotations.warn(
            "sort is ineffective for range queries since results are always ordered by "
            f"labels {ctx.position(name)}"
        )


def _nan_last(v: float, descending: bool) -> tuple[int, float]:
    if math.isnan(v):
        return (1, 0.0)
    return (0, -v if descending else v)


@register("sort")
def _sort(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    _sort_warning(ctx, "sort")
    vec = _vec(args[0])
    return _sorted(vec, lambda i: _nan_last(float(vec.values[i, 0]), False))


@register("sort_desc")
def _sort_desc(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    _sort_warning(ctx, "sort_desc")
    vec = _vec(args[0])
    return _sorted(vec, lambda i: _nan_last(float(vec.values[i, 0]), True))


def _natural(value: str) -> tuple[Any, ...]:
    return tuple(
        (0, int(part), part) if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", value)
        if part
    )


def _label_sort(args: list[Value], ctx: EvalContext, descending: bool, name: str) -> Vector:
    _sort_warning(ctx, name)
    vec = _vec(args[0])
    names = [_str(a) for a in args[1:]]
    visible = vec.labels

    def key(i: int) -> tuple[Any, ...]:
        lb = dict(visible[i])
        return (*[_natural(lb.get(n, "")) for n in names], _natural(str(visible[i])))

    order = sorted(range(len(vec)), key=key, reverse=descending)
    return vec.take(np.array(order, dtype=np.int64))


@register("sort_by_label")
def _sort_by_label(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return _label_sort(args, ctx, False, "sort_by_label")


@register("sort_by_label_desc")
def _sort_by_label_desc(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return _label_sort(args, ctx, True, "sort_by_label_desc")


@register("label_replace")
def _label_replace(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return label_replace(_vec(args[0]), _str(args[1]), _str(args[2]), _str(args[3]), _str(args[4]))


@register("label_join")
def _label_join(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return label_join(_vec(args[0]), _str(args[1]), _str(args[2]), [_str(a) for a in args[3:]])


def absent_labels(node: Any) -> Labels:
    """Labels ``absent()`` gives its result: the selector's equality matchers."""
    arg = node.args[0] if node.args else None
    if isinstance(arg, promql_parser.MatrixSelector):
        arg = arg.vector_selector
    if not isinstance(arg, promql_parser.VectorSelector):
        return ()
    seen: dict[str, str | None] = {}
    for m in arg.matchers.matchers:
        value = m.value if str(m.op).endswith("Equal") and "Not" not in str(m.op) else None
        if m.name in seen:
            seen[m.name] = None
        else:
            seen[m.name] = value
    return tuple(sorted((k, v) for k, v in seen.items() if v and k != "__name__"))


def _absent_result(missing: F64, node: Any, ctx: EvalContext) -> Vector:
    present = ~np.isnan(missing)
    return Vector(
        [absent_labels(node)],
        np.ones((1, ctx.steps)),
        present[None, :],
        np.zeros(1, dtype=bool),
    )


@register("absent")
def _absent(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    vec = _vec(args[0])
    any_present = vec.present.any(axis=0) if len(vec) else np.zeros(ctx.steps, dtype=bool)
    return _absent_result(np.where(any_present, np.nan, 1.0), node, ctx)


@register("absent_over_time")
def _absent_over_time(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return _absent_result(rf.absent_over_time(_mat(args[0])), node, ctx)


@register("histogram_quantile")
def _histogram_quantile(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return histogram_quantile(_scalar(args[0]), _vec(args[1]), ctx)


@register("histogram_quantiles")
def _histogram_quantiles(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    vec, label = _vec(args[0]), _str(args[1])
    if any(k == label for lb in vec.labels for k, _ in lb):
        raise EvaluationError(f"label {label!r} already exists on the input series")
    parts = []
    for q in args[2:]:
        qs = _scalar(q)
        one = histogram_quantile(qs, vec, ctx)
        text = "NaN" if math.isnan(qs[0]) else str(float(qs[0]))
        one.labels = [tuple(sorted([*lb, (label, text)])) for lb in one.labels]
        parts.append(one)
    return Vector(
        [lb for p in parts for lb in p.labels],
        np.concatenate([p.values for p in parts]) if parts else np.zeros((0, ctx.steps)),
        np.concatenate([p.present for p in parts]) if parts else np.zeros((0, ctx.steps), bool),
        np.concatenate([p.drop_name for p in parts]) if parts else np.zeros(0, bool),
    )


@register("histogram_fraction")
def _histogram_fraction(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return histogram_fraction(_scalar(args[0]), _scalar(args[1]), _vec(args[2]), ctx)


def _range(name: str, fn: Callable[[Matrix], Vector]) -> None:
    def body(args: list[Value], ctx: EvalContext, node: Any) -> Value:
        return fn(_mat(args[0]))

    register(name)(body)


for _name, _rfn in {
    "changes": rf.changes,
    "resets": rf.resets,
    "sum_over_time": rf.sum_over_time,
    "count_over_time": rf.count_over_time,
    "avg_over_time": rf.avg_over_time,
    "min_over_time": rf.min_over_time,
    "max_over_time": rf.max_over_time,
    "last_over_time": rf.last_over_time,
    "first_over_time": rf.first_over_time,
    "ts_of_last_over_time": rf.ts_of_last_over_time,
    "ts_of_first_over_time": rf.ts_of_first_over_time,
    "ts_of_max_over_time": rf.ts_of_max_over_time,
    "ts_of_min_over_time": rf.ts_of_min_over_time,
    "present_over_time": rf.present_over_time,
    "stddev_over_time": rf.stddev_over_time,
    "stdvar_over_time": rf.stdvar_over_time,
    "mad_over_time": rf.mad_over_time,
    "deriv": rf.deriv,
}.items():
    _range(_name, _rfn)


@register("rate")
def _rate(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return rf.extrapolated(_mat(args[0]), ctx, counter=True, per_second=True)


@register("increase")
def _increase(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return rf.extrapolated(_mat(args[0]), ctx, counter=True, per_second=False)


@register("delta")
def _delta(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return rf.extrapolated(_mat(args[0]), ctx, counter=False, per_second=False)


@register("irate")
def _irate(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return rf.instant_delta(_mat(args[0]), ctx, per_second=True)


@register("idelta")
def _idelta(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return rf.instant_delta(_mat(args[0]), ctx, per_second=False)


@register("quantile_over_time")
def _quantile_over_time(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return rf.quantile_over_time(_scalar(args[0]), _mat(args[1]), ctx)


@register("predict_linear", reads_time=True)
def _predict_linear(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return rf.predict_linear(_mat(args[0]), _scalar(args[1]), ctx.times)


@register("double_exponential_smoothing")
def _des(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return rf.double_exponential_smoothing(_mat(args[0]), _scalar(args[1]), _scalar(args[2]))


__all__ = ["FUNCTIONS", "Function", "drop_name", "lookup", "register"]


@register("forecast", reads_time=True)
def _forecast(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return forecast(_mat(args[0]), _scalar(args[1]), ctx.forecaster, ctx.text)


@register("start", reads_time=True)
def _start(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return Scalar(np.full(ctx.steps, ctx.query_start_ms / 1000.0))


@register("end", reads_time=True)
def _end(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return Scalar(np.full(ctx.steps, ctx.query_end_ms / 1000.0))


@register("range", reads_time=True)
def _range_fn(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return Scalar(np.full(ctx.steps, (ctx.query_end_ms - ctx.query_start_ms) / 1000.0))


@register("step", reads_time=True)
def _step(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    return Scalar(np.full(ctx.steps, ctx.query_step_ms / 1000.0))


@register("min_of")
def _min_of(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    a, b = _scalar(args[0]), _scalar(args[1])
    return Scalar(np.minimum(a, b))


@register("max_of")
def _max_of(args: list[Value], ctx: EvalContext, node: Any) -> Value:
    a, b = _scalar(args[0]), _scalar(args[1])
    return Scalar(np.maximum(a, b))
