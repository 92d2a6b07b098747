"""``forecast(v range-vector, horizon_seconds scalar)``: each series' forecast
``horizon_seconds`` ahead of each step, made by the forecasting model the engine is given.

The engine has no model of its own. Whoever builds an :class:`~promql.engine.Engine` passes
a :class:`SeriesForecaster`; foresight's service and CLI pass the autoscaler's (the
configured model and quantile, see :mod:`autoscaler.forecast.query`), so a rule that uses
``forecast()`` sees the number the autoscaler acts on. The forecaster is called once per
series and step with the samples of that step's window, and may answer None (no forecast:
the series is absent from the result at that step).

Without a forecaster, ``forecast()`` fails with an evaluation error that names the function,
even when the window holds no series. A stand-in model would give numbers the autoscaler
never computes, so an alert could fire (or stay silent) against what the scaling does, and
nobody would notice; failing at once makes a missing wire visible in ``rules test`` and in
the rule's health rather than in a wrong page at night.

The parser learns the function from :func:`register_forecast` (promql-parser's list of
extra functions is process-wide).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Protocol

import numpy as np
import promql_parser

from promql.errors import EvaluationError
from promql.values import F64, I64, Matrix, Vector

__all__ = ["NO_FORECASTER", "SeriesForecaster", "forecast", "register_forecast"]

NO_FORECASTER = "forecast() needs a forecasting model; none is configured"

_state = {"registered": False}
_lock = threading.Lock()


class SeriesForecaster(Protocol):
    """A forecasting model as ``forecast()`` asks it, one series and one step at a time."""

    def __call__(
        self, timestamps_ms: I64, values: F64, at_ms: int, horizon_seconds: float
    ) -> float | None:
        """The forecast ``horizon_seconds`` after ``at_ms`` from the samples
        ``(timestamps_ms, values)``: oldest first, at least one, none after ``at_ms``.
        None: no forecast from these samples."""
        ...


def register_forecast() -> None:
    """Teach promql-parser the ``forecast`` function (process-wide, once)."""
    with _lock:
        if _state["registered"]:
            return
        # An earlier registration in this process (the library's list is global) is fine.
        with contextlib.suppress(ValueError):
            promql_parser.register_extra_functions(
                [
                    promql_parser.Function(
                        "forecast",
                        [promql_parser.ValueType.Matrix, promql_parser.ValueType.Scalar],
                        promql_parser.ValueType.Vector,
                    )
                ]
            )
        _state["registered"] = True


def forecast(m: Matrix, horizon_s: F64, forecaster: SeriesForecaster | None, text: str) -> Vector:
    """Per series and step, ``forecaster``'s answer ``horizon_s`` seconds after the step;
    ``text`` is the query, for the error."""
    if forecaster is None:
        raise EvaluationError(f"{NO_FORECASTER}: {text}")
    out = np.zeros(m.lo.shape)
    present = m.counts >= 1
    for i, t in zip(*np.nonzero(present), strict=True):
        a, b = int(m.lo[i, t]), int(m.hi[i, t])
        value = forecaster(m.ts[a:b], m.vals[a:b], int(m.times[t]), float(horizon_s[t]))
        if value is None:
            present[i, t] = False
        else:
            out[i, t] = value
    vec = Vector(m.table, out, present, np.ones(len(m), dtype=bool))
    keep = present.any(axis=1)
    return vec if keep.all() else vec.take(keep)
