"""Values of subexpressions kept from one evaluation of a query to the next.

Rule groups evaluate the same expressions every 30 s or minute, and much of what they read
does not change between two evaluations: kube-state-metrics' series (requests, limits,
owners, pod phases) keep their values for hours, while the joins and aggregations over them
are much of a round's work. A subexpression made only of instant selectors, literals and
functions that ignore the evaluation time is a pure function of what its selectors give:
when every selector gives the same series with the same values as last time, its value is
the one it had then.

So for such a subexpression (the largest ones, seen from the top of the query) the
selectors are evaluated first and compared with those of the last evaluation, bit for bit;
only if one differs is the subexpression evaluated again. Values are never modified after
they are made (see :mod:`promql.shared`), so handing out the kept one is safe. A
subexpression that raised annotations is not kept: they must be raised again.

Only instant evaluations use this; a cache belongs to one set of queries (a rule group).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import promql_parser as pp

from promql.functions import FUNCTIONS
from promql.labelsets import LabelTable, Strings
from promql.values import Mask, Value, Vector
from tsdb.strings import StringTable

# More than any rule group has: a bound for queries whose ASTs are parsed again and again.
_MAX_ENTRIES = 10_000


class _Leaf(NamedTuple):
    """What a selector gave, less its sample times (no kept value depends on them)."""

    table: LabelTable
    values: np.ndarray[Any, Any]
    present: Mask
    drop_name: Mask


class _Entry(NamedTuple):
    node: Any  # kept so that its id is not reused while the entry exists
    strings: StringTable
    leaves: tuple[_Leaf, ...]
    value: Value


class RepeatCache:
    """Subexpression values of the last evaluation, reused while their selectors give the
    same series and values."""

    def __init__(self) -> None:
        self._plans: dict[int, tuple[Any, tuple[Any, ...] | None]] = {}
        self._entries: dict[int, _Entry] = {}
        self.hits = 0
        self.misses = 0

    def leaves(self, node: Any) -> tuple[Any, ...] | None:
        """The selectors of ``node`` if its value may be kept (an instant-only
        subexpression that is more than a selector or a literal), else None."""
        known = self._plans.get(id(node))
        if known is not None and known[0] is node:
            return known[1]
        found: list[Any] = []
        plan = tuple(found) if _repeatable(node, found) and found and not _bare(node) else None
        if len(self._plans) >= _MAX_ENTRIES:
            self._plans.clear()
        self._plans[id(node)] = (node, plan)
        return plan

    def get(self, node: Any, strings: Strings, leaves: Sequence[Value]) -> Value | None:
        """The value kept for ``node`` if its selectors gave the same as now."""
        entry = self._entries.get(id(node))
        if (
            entry is None
            or entry.node is not node
            or entry.strings is not strings.base
            or len(entry.leaves) != len(leaves)
            or not all(_same(a, b) for a, b in zip(entry.leaves, leaves, strict=True))
        ):
            self.misses += 1
            return None
        self.hits += 1
        value = entry.value
        if isinstance(value, Vector) and value.table.strings is not strings:
            # Codes of the store mean the same in this query; its own strings must be used.
            table = value.table.rebound(strings)
            return Vector(table, value.values, value.present, value.drop_name)
        return value

    def put(self, node: Any, strings: Strings, leaves: Sequence[Value], value: Value) -> None:
        """Keep ``value`` of ``node``, made from ``leaves``."""
        kept = [_leaf(v) for v in leaves]
        if isinstance(value, Vector) and (value.sample_ts is not None or _made_up(value.table)):
            return  # it carries the times of its samples, or codes of this query only
        leaves_kept = tuple(leaf for leaf in kept if leaf is not None)
        if len(leaves_kept) < len(kept) or any(_made_up(leaf.table) for leaf in leaves_kept):
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[id(node)] = _Entry(node, strings.base, leaves_kept, value)


def _made_up(table: LabelTable) -> bool:
    """Whether some label value has a code of the query's own (not of the store's table,
    which every query over the store shares)."""
    return bool(table.codes.size) and int(table.codes.min()) < 0


def _leaf(value: Value) -> _Leaf | None:
    if not isinstance(value, Vector):
        return None
    return _Leaf(value.table, value.values, value.present, value.drop_name)


def _same(kept: _Leaf, now: Value) -> bool:
    """Whether a selector gave the same series, values and presence as when kept."""
    if not isinstance(now, Vector) or len(now) != len(kept.table):
        return False
    table, then = now.table, kept.table
    if table is not then and (
        table.names != then.names
        or (table.codes is not then.codes and not np.array_equal(table.codes, then.codes))
    ):
        return False
    return (
        _bits_equal(now.values, kept.values)
        and np.array_equal(now.present, kept.present)
        and np.array_equal(now.drop_name, kept.drop_name)
    )


def _bits_equal(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    """Equal bit for bit (NaNs, stale markers and signed zeros included)."""
    if a is b:
        return True
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a.view(np.uint64), b.view(np.uint64)))


def _bare(node: Any) -> bool:
    """A selector on its own (in parentheses or not): nothing to save."""
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return isinstance(node, pp.VectorSelector)


def _repeatable(node: Any, leaves: list[Any]) -> bool:
    """Whether ``node``'s value depends only on its instant selectors' values; collects
    them into ``leaves``."""
    if isinstance(node, pp.VectorSelector):
        leaves.append(node)
        return True
    if isinstance(node, (pp.NumberLiteral, pp.StringLiteral)):
        return True
    if isinstance(node, (pp.ParenExpr, pp.UnaryExpr)):
        return _repeatable(node.expr, leaves)
    if isinstance(node, pp.Call):
        function = FUNCTIONS.get(node.func.name)
        if function is None or function.reads_time:
            return False
        return all(_repeatable(arg, leaves) for arg in node.args)
    if isinstance(node, pp.AggregateExpr):
        return _repeatable(node.expr, leaves) and (
            node.param is None or _repeatable(node.param, leaves)
        )
    if isinstance(node, pp.BinaryExpr):
        return _repeatable(node.lhs, leaves) and _repeatable(node.rhs, leaves)
    return False  # range selectors, subqueries
