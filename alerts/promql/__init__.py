"""PromQL evaluation over the embedded store, with Prometheus 3 semantics.

``Engine(store).instant("sum(rate(x[5m]))", at_ms)`` and ``Engine(store).range(...)`` return
a :class:`QueryResult`; :mod:`alerts.promql.promqltest` runs Prometheus' promqltest files.
"""

from alerts.promql.engine import Engine
from alerts.promql.errors import (
    EvaluationError,
    LimitExceeded,
    ParseError,
    PromQLError,
    QueryTimeout,
)
from alerts.promql.parse import parse
from alerts.promql.results import QueryResult, SeriesResult, VectorColumns
from alerts.promql.selection import Querier
from alerts.promql.settings import PromQLSettings

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
    "SeriesResult",
    "VectorColumns",
    "parse",
]
