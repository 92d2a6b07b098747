"""PromQL evaluation over the embedded store, with Prometheus 3 semantics (parsing by
promql-parser).

``Engine(store).instant("sum(rate(x[5m]))", at_ms)`` and ``Engine(store).range(...)`` return
a :class:`QueryResult`; :mod:`promql.promqltest` runs Prometheus' promqltest files.
"""

from promql.engine import Engine
from promql.errors import (
    EvaluationError,
    LimitExceeded,
    ParseError,
    PromQLError,
    QueryTimeout,
)
from promql.parse import parse
from promql.repeat import RepeatCache
from promql.results import QueryResult, SeriesResult, VectorColumns
from promql.selection import Querier
from promql.settings import PromQLSettings

__all__ = [
    "Engine",
    "EvaluationError",
    "LimitExceeded",
    "ParseError",
    "PromQLError",
    "PromQLSettings",
    "Querier",
    "QueryResult",
    "QueryTimeout",
    "RepeatCache",
    "SeriesResult",
    "VectorColumns",
    "parse",
]
