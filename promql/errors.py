"""The errors of the PromQL evaluator, one tree for the whole package.

``PromQLError`` is the root. A query that does not parse or type-check raises
:class:`ParseError` with promql-parser's message; evaluation failures raise
:class:`EvaluationError`; resource guards raise :class:`LimitExceeded` and
:class:`QueryTimeout`. Every message names the query it is about.
"""

from __future__ import annotations


class PromQLError(Exception):
    """Base of every error the evaluator raises."""


class ParseError(PromQLError):
    """The expression does not parse or type-check."""


class EvaluationError(PromQLError):
    """The expression parsed but cannot be evaluated on this data."""


class LimitExceeded(EvaluationError):
    """The query would touch more series or samples than the settings allow."""


class QueryTimeout(EvaluationError):
    """The query ran longer than the configured timeout."""
