"""``forecast(v range-vector, horizon_seconds scalar)``: each series' predicted value at
evaluation time + horizon.

Until rules can reach the forecasting models, the prediction comes from a small model that
lives here: Holt's linear (double exponential) smoothing over the window's samples, with
smoothing factor 0.5 and trend factor 0.3, its per-sample trend scaled to seconds by the
window's mean sample interval and extended from the newest sample to the target time. A
window with one sample forecasts that value; a constant series forecasts itself.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import promql_parser

from promql.values import F64, I64, Matrix, Vector

LEVEL_FACTOR = 0.5
TREND_FACTOR = 0.3

_state = {"registered": False}
_lock = threading.Lock()


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


def predict(ts: I64, values: F64, at_ms: float) -> float:
    """The model's value at ``at_ms`` from samples ``(ts, values)``."""
    if len(values) == 1 or np.all(values == values[0]):
        return float(values[-1])
    level, trend = float(values[1]), float(values[1] - values[0])
    for x in values[2:].tolist():
        previous = level
        level = LEVEL_FACTOR * x + (1 - LEVEL_FACTOR) * (level + trend)
        trend = TREND_FACTOR * (level - previous) + (1 - TREND_FACTOR) * trend
    interval_s = float(ts[-1] - ts[0]) / 1000.0 / (len(ts) - 1)
    ahead_s = (at_ms - float(ts[-1])) / 1000.0
    return level + trend * ahead_s / interval_s if interval_s > 0 else level


def forecast(m: Matrix, horizon_s: F64) -> Vector:
    """Per series and step, the prediction ``horizon_s`` seconds after the step."""
    out = np.zeros(m.lo.shape)
    present = m.counts >= 1
    for i, t in zip(*np.nonzero(present), strict=True):
        a, b = int(m.lo[i, t]), int(m.hi[i, t])
        out[i, t] = predict(m.ts[a:b], m.vals[a:b], float(m.times[t]) + 1000.0 * horizon_s[t])
    vec = Vector(m.table, out, present, np.ones(len(m), dtype=bool))
    keep = present.any(axis=1)
    return vec if keep.all() else vec.take(keep)
