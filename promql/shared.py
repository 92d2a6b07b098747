"""Results shared by the queries of one evaluation round.

The rules of a group are evaluated one after the other at one time, and real rule sets
repeat themselves: kube-prometheus joins a dozen recording rules against the same
``topk by (namespace, pod) (1, max by (...) (kube_pod_info))``. Within a round, a
subexpression evaluated at the same times over series that nobody wrote in between gives
the same value, so it is evaluated once and its value reused.

A subexpression is shared only when every selector in it names its metric, and none of
those metrics is written during the round (the caller names the ones it writes: recorded
series, ``ALERTS``...). Values are never modified after they are made, so reuse is safe.
A subexpression that raised annotations is not shared: they name positions in their query.
A round may be given a memory budget: values are kept while they fit in it (a dashboard's
range queries over an hour of steps make values of tens of megabytes).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import promql_parser as pp

from promql.labelsets import Strings
from promql.values import Matrix, Scalar, Value, Vector

SHARED_NODES = (pp.AggregateExpr, pp.BinaryExpr, pp.Call, pp.MatrixSelector, pp.VectorSelector)
"""The nodes whose values are worth keeping."""

# Per AST node (parsed ASTs are cached, so nodes live long): its identity as text, and the
# metrics it reads (None: some selector does not name its metric). The node itself is kept
# so that its id is not reused while the entry exists.
_identities: dict[int, tuple[Any, str, frozenset[str] | None]] = {}
_IDENTITIES_KEPT = 50_000
# The debug form's strings, and the layout between them.
_LAYOUT = re.compile(r'("(?:[^"\\]|\\.)*")|\s+')
# A matcher =~".*" in the debug form without layout.
_MATCH_ALL = re.compile(
    r'Matcher\{op:Re\(Regex\("(?:[^"\\]|\\.)*",\),\),name:"(?:[^"\\]|\\.)*",value:"\.\*",\},'
)


def _identity(node: Any) -> tuple[str, frozenset[str] | None]:
    known = _identities.get(id(node))
    if known is not None and known[0] is node:
        return known[1], known[2]
    names: set[str] = set()
    named = True

    def visit(child: Any) -> bool:
        nonlocal named
        if isinstance(child, pp.VectorSelector):
            if child.name:
                names.add(child.name)
            else:
                named = False
        return True

    pp.walk(node, visit)
    # The library's debug form spells every field, with strings escaped: an exact key. A
    # matcher =~".*" matches every series (``.`` matches a newline too) and is left out, so
    # that panels filtering by a variable at "All" share with those that do not filter.
    compact = _LAYOUT.sub(lambda m: m.group(1) or "", repr(node))
    text = _MATCH_ALL.sub("", compact)
    metrics = frozenset(names) if named else None
    if len(_identities) >= _IDENTITIES_KEPT:
        _identities.clear()
    _identities[id(node)] = (node, text, metrics)
    return text, metrics


class SharedResults:
    """Subexpression values of one round, over one store, at one set of times per query.

    ``written`` names the metrics written between the round's queries; subexpressions that
    read them are evaluated afresh every time.
    """

    def __init__(
        self, strings: Strings, written: Collection[str] = (), max_bytes: int | None = None
    ) -> None:
        # One code space for the whole round: shared values carry label codes.
        self.strings = strings
        self._written = frozenset(written)
        self._values: dict[tuple[object, ...], Value] = {}
        self._left = max_bytes
        self.hits = 0

    def key(self, node: Any, steps: tuple[object, ...]) -> tuple[object, ...] | None:
        """The key of ``node``'s value at ``steps`` (times and query bounds), or None if
        its value may not be shared."""
        text, metrics = _identity(node)
        if metrics is None or metrics & self._written:
            return None
        return (text, *steps)

    def get(self, key: tuple[object, ...]) -> Value | None:
        """A value kept under ``key``."""
        value = self._values.get(key)
        if value is not None:
            self.hits += 1
        return value

    def put(self, key: tuple[object, ...], value: Value) -> None:
        """Keep a value (if it fits in what is left of the budget)."""
        if self._left is not None:
            size = nbytes(value)
            if size > self._left:
                return
            self._left -= size
        self._values[key] = value


def nbytes(value: Value) -> int:
    """Roughly the memory a value holds."""
    if isinstance(value, Vector):
        stamps = value.sample_ts.nbytes if value.sample_ts is not None else 0
        return value.values.nbytes + value.present.nbytes + stamps + value.table.codes.nbytes
    if isinstance(value, Matrix):
        arrays = (value.ts, value.vals, value.lo, value.hi, value.table.codes)
        return sum(a.nbytes for a in arrays)
    if isinstance(value, Scalar):
        return value.values.nbytes
    return 64
