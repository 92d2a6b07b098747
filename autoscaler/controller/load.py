"""The load a PredictiveAutoscaler follows, read from the store with PromQL.

CPU and Memory are the workload's usage as the collectors record it; Query is the user's
own expression. Either way one PromQL expression gives the total load of the workload, so
history, live value and rules all see the same number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autoscaler.forecast.base import FloatArray
from autoscaler.resource.model import MetricType, PredictiveAutoscalerSpec
from promql import Engine
from promql.errors import PromQLError
from runtime import names

__all__ = ["LoadError", "LoadQuery", "LoadReading", "load_query", "quote"]


class LoadError(Exception):
    """The load query failed; the message says which query and why."""


@dataclass(frozen=True)
class LoadReading:
    """The load now and when it was observed (None: no data)."""

    value: float | None
    observed_at: float | None


def quote(value: str) -> str:
    """``value`` escaped for a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class LoadQuery:
    """PromQL for the total load, and for when its newest sample was taken."""

    expr: str
    freshness: str | None  # None: fresh whenever the expression has a value

    def read(self, engine: Engine, now: float) -> LoadReading:
        """The load at ``now``."""
        at_ms = round(now * 1000)
        value = self._scalar(engine, self.expr, at_ms)
        if value is None:
            return LoadReading(None, None)
        observed = now if self.freshness is None else self._scalar(engine, self.freshness, at_ms)
        return LoadReading(value, observed)

    def history(self, engine: Engine, start: float, end: float, step: float) -> FloatArray:
        """Load on the grid ``start, start + step, ... <= end``; NaN where unknown."""
        step_ms = round(step * 1000)
        start_ms = round(start * 1000)
        steps = int((end - start) // step) + 1
        out = np.full(steps, np.nan)
        # A week on a 15 s grid is more points than one range query may return: the history
        # is read in chunks the engine accepts.
        chunk = max(1, engine.settings.max_points)
        for first in range(0, steps, chunk):
            last = min(steps, first + chunk) - 1
            try:
                result = engine.range(
                    self.expr, start_ms + first * step_ms, start_ms + last * step_ms, step_ms
                )
            except PromQLError as e:
                raise LoadError(f"load query {self.expr!r}: {e}") from e
            for series in result.series:
                index = (series.timestamps - start_ms) // step_ms
                ok = (index >= first) & (index <= last)
                # More than one series: the total (a query should return one, but sum is the
                # meaning of "the workload's load" either way).
                current = out[index[ok]]
                out[index[ok]] = np.where(np.isnan(current), 0.0, current) + series.values[ok]
        return out

    def _scalar(self, engine: Engine, expr: str, at_ms: int) -> float | None:
        try:
            result = engine.instant(expr, at_ms)
        except PromQLError as e:
            raise LoadError(f"load query {expr!r}: {e}") from e
        if result.type == "scalar":
            return None if math.isnan(result.scalar) else result.scalar
        values = [float(s.values[-1]) for s in result.series if len(s.values)]
        values = [v for v in values if math.isfinite(v)]
        return sum(values) if values else None


def load_query(namespace: str, spec: PredictiveAutoscalerSpec) -> LoadQuery:
    """The load query of an autoscaler (its horizontal metric; CPU if it has none)."""
    metric = spec.horizontal.metric if spec.horizontal is not None else None
    if metric is not None and metric.type is MetricType.QUERY:
        assert metric.query is not None  # the model requires it
        return LoadQuery(metric.query, None)
    name = (
        names.WORKLOAD_MEMORY
        if metric and metric.type is MetricType.MEMORY
        else (names.WORKLOAD_CPU_CORES)
    )
    selector = (
        f'{name}{{namespace="{quote(namespace)}",workload_kind="{spec.target_ref.kind}",'
        f'workload="{quote(spec.target_ref.name)}"}}'
    )
    return LoadQuery(f"sum({selector})", f"max(timestamp({selector}))")
