"""Series selectors written as PromQL (``up{job=~"api|web"}``) turned into store matchers."""

from __future__ import annotations

import functools
from typing import Any

import promql_parser

from tsdb.labels import METRIC_NAME, Matcher, MatchType

# MatchOp values are not hashable, so look them up by name.
_OPS = {
    "Equal": MatchType.EQUAL,
    "NotEqual": MatchType.NOT_EQUAL,
    "Re": MatchType.REGEX,
    "NotRe": MatchType.NOT_REGEX,
}


class SelectorError(ValueError):
    """Text that is not a single series selector."""


def matchers_of(vector_selector: Any) -> list[Matcher]:
    """The matchers of a parsed ``promql_parser.VectorSelector`` (the name included)."""
    result = []
    if vector_selector.name:
        result.append(_matcher("Equal", METRIC_NAME, vector_selector.name))
    for m in vector_selector.matchers.matchers:
        result.append(_matcher(str(m.op).rsplit(".", 1)[-1], m.name, m.value))
    return result


@functools.lru_cache(maxsize=8192)
def _matcher(op: str, name: str, value: str) -> Matcher:
    # Rules select with the same matchers every round; a regular expression is compiled
    # once, not at every evaluation. Matchers are immutable, so sharing them is safe.
    return Matcher(_OPS[op], name, value)


def parse_selector(text: str) -> list[Matcher]:
    """Matchers of a selector such as ``http_requests_total{code!="200"}``."""
    try:
        expr = promql_parser.parse(text)
    except ValueError as e:
        raise SelectorError(f"invalid selector {text!r}: {e}") from e
    if not isinstance(expr, promql_parser.VectorSelector):
        raise SelectorError(f'{text!r} is not a series selector (like up{{job="api"}})')
    if expr.matchers.or_matchers:
        raise SelectorError(f"{text!r}: 'or' inside a selector is not supported here")
    return matchers_of(expr)
