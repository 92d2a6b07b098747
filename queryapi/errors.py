"""The errors of the query API, one tree, and the one place that maps foreign errors into it.

Every failure a handler reports is an :class:`ApiError` carrying Prometheus' ``errorType``;
:data:`STATUS` gives the HTTP status Prometheus answers with for each type (2.42's
``respondError``). :func:`translate` maps what the evaluator and the store raise.
"""

from __future__ import annotations

from typing import Literal

from promql import EvaluationError, LimitExceeded, ParseError, PromQLError, QueryTimeout
from tsdb import StoreError

ErrorType = Literal["bad_data", "execution", "timeout", "canceled", "internal", "not_found"]

STATUS: dict[ErrorType, int] = {
    "bad_data": 400,
    "execution": 422,
    "timeout": 503,
    "canceled": 503,
    "internal": 500,
    "not_found": 404,
}


class ApiError(Exception):
    """A request the API answers with ``{"status": "error", "errorType": ..., "error": ...}``."""

    def __init__(self, error_type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.error_type: ErrorType = error_type
        self.message = message

    @property
    def status(self) -> int:
        """The HTTP status of the answer."""
        return STATUS[self.error_type]

    def body(self) -> dict[str, str]:
        """The JSON envelope of the answer."""
        return {"status": "error", "errorType": self.error_type, "error": self.message}


def invalid_parameter(name: str, message: str) -> ApiError:
    """Prometheus' ``invalid parameter "name": message`` (``bad_data``)."""
    return ApiError("bad_data", f'invalid parameter "{name}": {message}')


def translate(error: Exception) -> ApiError:
    """The API error for what evaluating a query raised: a query that does not parse is
    ``bad_data``; a timeout is ``timeout``; the sample and series limits and other evaluation
    failures are ``execution``, as in Prometheus; a store failure is ``internal``."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, ParseError):
        return invalid_parameter("query", str(error))
    if isinstance(error, QueryTimeout):
        return ApiError("timeout", f"query timed out in expression evaluation: {error}")
    if isinstance(error, LimitExceeded):
        return ApiError(
            "execution",
            f"query processing would load too many samples into memory in query execution: {error}",
        )
    if isinstance(error, (EvaluationError, PromQLError)):
        return ApiError("execution", str(error))
    if isinstance(error, StoreError):
        return ApiError("internal", str(error))
    return ApiError("internal", f"{type(error).__name__}: {error}")
