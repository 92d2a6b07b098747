"""The PromQL evaluator: walks promql-parser's AST over a :class:`Querier`.

Every node is evaluated at all steps of the query at once (see
:mod:`promql.values`). Semantics are Prometheus 3's: windows are open on the
left, instant selectors look back ``lookback_delta_seconds`` and stop at staleness
markers, and ``__name__`` removal is delayed to the end of evaluation so that
``label_replace`` can still read names that functions dropped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from datetime import timedelta
from typing import Any

import numpy as np
import promql_parser as pp

from promql import aggregations, binary
from promql.context import EvalContext
from promql.errors import EvaluationError, PromQLError
from promql.forecast import SeriesForecaster
from promql.functions import lookup
from promql.labels_functions import merge_same_labels
from promql.parse import parse
from promql.repeat import RepeatCache
from promql.results import (
    QueryResult,
    instant_result,
    range_result,
)
from promql.selection import (
    Querier,
    Selected,
    instant_vector,
    matrix,
    matrix_from_vector,
    select,
    strings_for,
)
from promql.settings import PromQLSettings
from promql.shared import SHARED_NODES, SharedResults
from promql.values import F64, I64, Matrix, Scalar, String, Value, Vector
from tsdb.labels import Matcher
from tsdb.selector import matchers_of

_CARD = {
    "OneToOne": "one-to-one",
    "ManyToOne": "many-to-one",
    "OneToMany": "one-to-many",
    "ManyToMany": "many-to-many",
}
_NEGATIVE_AT = re.compile(r"@\s*(-\s*[0-9.]+(?:e[+-]?[0-9]+)?)", re.IGNORECASE)
_RESETTING_FUNCTIONS = frozenset({"label_replace", "label_join"})


def _ms(delta: timedelta) -> int:
    return round(delta / timedelta(milliseconds=1))


class Engine:
    """Evaluates PromQL text over a querier (the embedded store or a test fixture).

    ``forecaster`` is the model behind ``forecast()`` (see :mod:`promql.forecast`); without
    one, a query that calls ``forecast()`` fails.
    """

    def __init__(
        self,
        querier: Querier,
        settings: PromQLSettings | None = None,
        forecaster: SeriesForecaster | None = None,
    ) -> None:
        self.querier = querier
        self.settings = settings or PromQLSettings()
        self.forecaster = forecaster

    def with_settings(self, settings: PromQLSettings) -> Engine:
        """An engine over the same querier and forecaster with other settings."""
        return Engine(self.querier, settings, self.forecaster)

    def instant(
        self,
        text: str,
        at_ms: int,
        shared: SharedResults | None = None,
        repeat: RepeatCache | None = None,
    ) -> QueryResult:
        """Evaluate ``text`` at one time; with ``shared``, reuse (and keep) the values of
        subexpressions that other queries of the same round evaluated; with ``repeat``,
        those of its last evaluation whose selectors give the same as then."""
        ctx = self._context(text, np.array([at_ms], dtype=np.int64), at_ms, at_ms, False, shared)
        ctx.repeat = repeat
        value = self._evaluate(text, ctx)
        result = instant_result(value, at_ms)
        result.annotations = ctx.annotations
        return result

    def range(
        self,
        text: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        shared: SharedResults | None = None,
    ) -> QueryResult:
        """Evaluate ``text`` at ``start_ms, start_ms + step_ms, ... <= end_ms``; with
        ``shared``, as :meth:`instant` does."""
        if step_ms <= 0:
            raise EvaluationError("zero or negative query resolution step widths are not accepted")
        if end_ms < start_ms:
            raise EvaluationError("end timestamp must not be before start time")
        steps = (end_ms - start_ms) // step_ms + 1
        if steps > self.settings.max_points:
            raise EvaluationError(
                f"exceeded maximum resolution of {self.settings.max_points:,} points per "
                f"timeseries: try decreasing the query resolution (?step=XX)"
            )
        times = start_ms + step_ms * np.arange(steps, dtype=np.int64)
        ctx = self._context(text, times, start_ms, end_ms, True, shared)
        ctx.query_step_ms = step_ms
        value = self._evaluate(text, ctx)
        result = range_result(value, times)
        result.annotations = ctx.annotations
        return result

    def shared(self, written: Collection[str] = (), max_bytes: int | None = None) -> SharedResults:
        """A new round of queries that share subexpression values; ``written`` names the
        metrics written during the round; the values kept hold at most ``max_bytes``."""
        return SharedResults(strings_for(self.querier), written, max_bytes)

    def _context(
        self,
        text: str,
        times: I64,
        start_ms: int,
        end_ms: int,
        range_query: bool,
        shared: SharedResults | None = None,
    ) -> EvalContext:
        if shared is not None and _NEGATIVE_AT.search(text):
            # The library cannot describe such a node (see :mod:`promql.parse`).
            shared = None
        return EvalContext(
            times=times,
            query_start_ms=start_ms,
            query_end_ms=end_ms,
            settings=self.settings,
            text=text,
            range_query=range_query,
            deadline=time.monotonic() + self.settings.timeout_seconds,
            strings=shared.strings if shared is not None else strings_for(self.querier),
            shared=shared,
            forecaster=self.forecaster,
        )

    def _evaluate(self, text: str, ctx: EvalContext) -> Value:
        expr = parse(text)
        try:
            with np.errstate(all="ignore"):
                value = self._eval(expr, ctx)
        except PromQLError:
            raise
        except (ValueError, IndexError, KeyError, TypeError, AssertionError) as e:
            raise EvaluationError(f"cannot evaluate {text!r}: {e}") from e
        if isinstance(value, Vector):
            value = merge_same_labels(value, visible=True)
        return value

    # ------------------------------------------------------------------------ nodes

    def _eval(self, node: Any, ctx: EvalContext) -> Value:
        ctx.check_deadline()
        if ctx.given is not None:
            given = ctx.given.get(id(node))
            if given is not None:
                return given
        if ctx.repeat is not None:
            leaves = ctx.repeat.leaves(node)
            if leaves is not None:
                return self._repeated(node, leaves, ctx.repeat, ctx)
        return self._eval_shared(node, ctx)

    def _repeated(
        self, node: Any, leaves: tuple[Any, ...], repeat: RepeatCache, ctx: EvalContext
    ) -> Value:
        """``node``'s value, kept from the last evaluation if its selectors give the same."""
        now = [self._eval_shared(leaf, ctx) for leaf in leaves]
        kept = repeat.get(node, ctx.strings, now)
        if kept is not None:
            return kept
        noted = ctx.annotations.raised
        # Below a checked node no other is checked, and its selectors are not read twice.
        ctx.repeat, ctx.given = None, {id(leaf): v for leaf, v in zip(leaves, now, strict=True)}
        try:
            value = self._eval_shared(node, ctx)
        finally:
            ctx.repeat, ctx.given = repeat, None
        if ctx.annotations.raised == noted:
            repeat.put(node, ctx.strings, now, value)
        return value

    def _eval_shared(self, node: Any, ctx: EvalContext) -> Value:
        shared = ctx.shared
        if shared is None or not isinstance(node, SHARED_NODES):
            return self._eval_node(node, ctx)
        key = shared.key(node, ctx.steps_key())
        if key is None:
            return self._eval_node(node, ctx)
        value = shared.get(key)
        if value is None:
            noted = ctx.annotations.raised
            value = self._eval_node(node, ctx)
            if ctx.annotations.raised == noted:
                shared.put(key, value)
        return value

    def _eval_node(self, node: Any, ctx: EvalContext) -> Value:
        if isinstance(node, pp.NumberLiteral):
            return Scalar(np.full(ctx.steps, float(node.val)))
        if isinstance(node, pp.StringLiteral):
            return String(node.val)
        if isinstance(node, pp.ParenExpr):
            return self._eval(node.expr, ctx)
        if isinstance(node, pp.UnaryExpr):
            return self._negate(self._eval(node.expr, ctx))
        if isinstance(node, pp.VectorSelector):
            return self._vector_selector(node, ctx)
        if isinstance(node, pp.MatrixSelector):
            return self._matrix_selector(node, ctx)
        if isinstance(node, pp.SubqueryExpr):
            return self._subquery(node, ctx)
        if isinstance(node, pp.Call):
            return self._call(node, ctx)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node, ctx)
        if isinstance(node, pp.BinaryExpr):
            return self._binary(node, ctx)
        raise EvaluationError(f"unsupported expression {type(node).__name__} in {ctx.text!r}")

    def _negate(self, value: Value) -> Value:
        if isinstance(value, Scalar):
            return Scalar(-value.values)
        if isinstance(value, Vector):
            return Vector(value.table, -value.values, value.present, np.ones(len(value), bool))
        raise EvaluationError("unary minus applies to scalars and instant vectors only")

    def _times(self, node: Any, ctx: EvalContext) -> I64:
        """The times a selector or subquery reads at, after ``@`` and ``offset``."""
        times = ctx.times
        at = node.at
        if at is not None:
            kind = str(at.type).rsplit(".", 1)[-1]
            if kind == "Start":
                at_ms = ctx.query_start_ms
            elif kind == "End":
                at_ms = ctx.query_end_ms
            else:
                at_ms = self._at_timestamp(at, ctx)
            times = np.full(ctx.steps, at_ms, dtype=np.int64)
        if node.offset is not None:
            times = times - _ms(node.offset)
        return times

    def _at_timestamp(self, at: Any, ctx: EvalContext) -> int:
        try:
            return round(float(at.at.timestamp()) * 1000)
        except BaseException as e:  # promql-parser panics on times before 1970
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            found = _NEGATIVE_AT.findall(ctx.text)
            if len(set(found)) != 1:
                raise EvaluationError(
                    f"cannot read a negative @ timestamp in {ctx.text!r}"
                ) from None
            return round(float(found[0].replace(" ", "")) * 1000)

    def _select(
        self, selector: Any, ctx: EvalContext, start: int, end: int, newest: bool = False
    ) -> Selected:
        if selector.matchers.or_matchers:
            raise EvaluationError(f"'or' inside a selector is not supported: {ctx.text!r}")
        matchers = self._matchers(selector, ctx)
        series = select(self.querier, matchers, start, end, ctx.strings, newest)
        ctx.charge(len(series.table), len(series.timestamps))
        return series

    def _matchers(self, selector: Any, ctx: EvalContext) -> list[Matcher]:
        try:
            return matchers_of(selector)
        except ValueError as e:
            raise EvaluationError(f"{e} in {ctx.text!r}") from e

    def _vector_selector(self, node: Any, ctx: EvalContext) -> Vector:
        times = self._times(node, ctx)
        lookback = int(self.settings.lookback_delta_seconds * 1000)
        first, last = int(times.min()), int(times.max())
        # At a single time only each series' newest sample matters.
        series = self._select(node, ctx, first - lookback + 1, last, newest=first == last)
        return instant_vector(series, times, lookback)

    def _matrix_selector(self, node: Any, ctx: EvalContext) -> Matrix:
        selector = node.vector_selector
        times = self._times(selector, ctx)
        range_ms = _ms(node.range)
        series = self._select(selector, ctx, int(times.min()) - range_ms + 1, int(times.max()))
        return matrix(series, times, range_ms)

    def _subquery(self, node: Any, ctx: EvalContext) -> Matrix:
        times = self._times(node, ctx)
        range_ms = _ms(node.range)
        step_ms = (
            _ms(node.step)
            if node.step is not None
            else int(self.settings.default_subquery_step_seconds * 1000)
        )
        low = int(times.min()) - range_ms
        first = (low // step_ms) * step_ms
        if first <= low:
            first += step_ms
        inner_times = np.arange(first, int(times.max()) + 1, step_ms, dtype=np.int64)
        inner = ctx.with_times(inner_times)
        value = self._eval(node.expr, inner) if len(inner_times) else Vector.empty(0, ctx.strings)
        if isinstance(value, Scalar):
            value = Vector(
                [()],
                value.values[None, :],
                np.ones((1, len(inner_times)), dtype=bool),
                np.zeros(1, dtype=bool),
            )
        if not isinstance(value, Vector):
            raise EvaluationError(f"subquery of a {type(value).__name__.lower()} in {ctx.text!r}")
        return matrix_from_vector(value, inner_times, times, range_ms)

    def _call(self, node: Any, ctx: EvalContext) -> Value:
        name = node.func.name
        fn = lookup(name)
        args = [self._eval(a, ctx) for a in node.args]
        result = fn.body(args, ctx, node)
        if isinstance(result, Vector) and name in _RESETTING_FUNCTIONS:
            result = merge_same_labels(result)
        return result

    def _aggregate(self, node: Any, ctx: EvalContext) -> Vector:
        op = str(node.op)
        vec = self._eval(node.expr, ctx)
        if not isinstance(vec, Vector):
            raise EvaluationError(f"{op} expects an instant vector in {ctx.text!r}")
        param: F64 | str | None = None
        if node.param is not None:
            p = self._eval(node.param, ctx)
            if isinstance(p, Scalar):
                param = p.values
            elif isinstance(p, String):
                param = p.value
            else:
                raise EvaluationError(f"{op} expects a scalar parameter in {ctx.text!r}")
        names: list[str] = []
        without = False
        if node.modifier is not None:
            names = list(node.modifier.labels)
            without = str(node.modifier.type).endswith("Without")
        return aggregations.aggregate(op, vec, param, names, without, ctx)

    def _binary(self, node: Any, ctx: EvalContext) -> Value:
        op = str(node.op)
        lhs = self._eval(node.lhs, ctx)
        rhs = self._eval(node.rhs, ctx)
        mod = node.modifier
        return_bool = bool(mod.return_bool) if mod is not None else False
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            return Scalar(binary.scalar_scalar(op, lhs.values, rhs.values))
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return binary.vector_scalar(op, lhs, rhs.values, False, return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return binary.vector_scalar(op, rhs, lhs.values, True, return_bool)
        if isinstance(lhs, Vector) and isinstance(rhs, Vector):
            return binary.vector_vector(op, lhs, rhs, _matching(mod, op))
        raise EvaluationError(f"operator {op} cannot combine these operands in {ctx.text!r}")


def _matching(mod: Any, op: str) -> binary.Matching:
    if mod is None:
        card = "many-to-many" if op in binary.SET_OPERATORS else "one-to-one"
        return binary.Matching(card=card)
    card = _CARD[str(mod.card).rsplit(".", 1)[-1]]
    if op in binary.SET_OPERATORS:
        card = "many-to-many"
    on, labels = False, ()
    if mod.matching is not None:
        on = str(mod.matching.type).endswith("Include")
        labels = tuple(mod.matching.labels)
    return binary.Matching(
        card=card,
        on=on,
        labels=labels,
        include=tuple(mod.group_labels or ()),
        return_bool=bool(mod.return_bool),
    )
