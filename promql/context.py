"""What evaluation carries along: the steps, the budget, and the annotations raised."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from promql.errors import LimitExceeded, QueryTimeout
from promql.forecast import SeriesForecaster
from promql.labelsets import Strings
from promql.settings import PromQLSettings
from promql.shared import SharedResults
from promql.values import I64, Value

if TYPE_CHECKING:
    from promql.repeat import RepeatCache


@dataclass
class Annotations:
    """Warnings and infos, rendered as Prometheus' API renders them."""

    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    # Every annotation raised, repeats included: whether a subexpression raised any.
    raised: int = 0

    def warn(self, message: str) -> None:
        """Add ``PromQL warning: message`` once."""
        self.raised += 1
        text = f"PromQL warning: {message}"
        if text not in self.warnings:
            self.warnings.append(text)

    def info(self, message: str) -> None:
        """Add ``PromQL info: message`` once."""
        self.raised += 1
        text = f"PromQL info: {message}"
        if text not in self.infos:
            self.infos.append(text)


@dataclass
class EvalContext:
    """The steps of one evaluation and the state shared by its nodes."""

    times: I64
    query_start_ms: int
    query_end_ms: int
    settings: PromQLSettings
    text: str
    range_query: bool
    query_step_ms: int = 0
    annotations: Annotations = field(default_factory=Annotations)
    deadline: float = 0.0
    series_loaded: int = 0
    samples_loaded: int = 0
    strings: Strings = field(default_factory=Strings)
    shared: SharedResults | None = None
    forecaster: SeriesForecaster | None = None
    # Values kept from the last evaluation of the query (instant queries of rule groups).
    repeat: RepeatCache | None = None
    # Values of selectors already evaluated, by node id, while a repeat check evaluates
    # the subexpression above them.
    given: dict[int, Value] | None = None

    def with_times(self, times: I64) -> EvalContext:
        """The same evaluation at other steps (subqueries, ``@``, ``offset``); the budget
        and the annotations stay shared."""
        sub = EvalContext(
            times,
            self.query_start_ms,
            self.query_end_ms,
            self.settings,
            self.text,
            self.range_query,
            self.query_step_ms,
            self.annotations,
            self.deadline,
            strings=self.strings,
            shared=self.shared,
            forecaster=self.forecaster,
        )
        sub._parent = self
        return sub

    _parent: EvalContext | None = None

    @property
    def steps(self) -> int:
        """Number of steps."""
        return len(self.times)

    def root(self) -> EvalContext:
        """The outermost context, which holds the budget counters."""
        ctx = self
        while ctx._parent is not None:
            ctx = ctx._parent
        return ctx

    def check_deadline(self) -> None:
        """Raise :class:`QueryTimeout` when the time budget is spent."""
        if self.deadline and time.monotonic() > self.deadline:
            raise QueryTimeout(
                f"query timed out after {self.settings.timeout_seconds:g}s: {self.text}"
            )

    def charge(self, series: int, samples: int) -> None:
        """Count loaded series and samples against the limits."""
        root = self.root()
        root.series_loaded += series
        root.samples_loaded += samples
        if root.series_loaded > self.settings.max_series:
            raise LimitExceeded(
                f"query selects {root.series_loaded:,} series, more than max_series="
                f"{self.settings.max_series:,}: {self.text}"
            )
        if root.samples_loaded > self.settings.max_samples:
            raise LimitExceeded(
                f"query loads {root.samples_loaded:,} samples, more than max_samples="
                f"{self.settings.max_samples:,}: {self.text}"
            )
        self.check_deadline()

    def steps_key(self) -> tuple[object, ...]:
        """What, besides an expression, decides its value: the times (always evenly
        spaced, so first, last and count) and the query's bounds and step (``@ start()``,
        ``step()``...)."""
        times = self.times
        first, last = (int(times[0]), int(times[-1])) if len(times) else (0, 0)
        return (
            first,
            last,
            len(times),
            self.query_start_ms,
            self.query_end_ms,
            self.query_step_ms,
            self.range_query,
        )

    def position(self, needle: str) -> str:
        """``(line:column)`` of the first occurrence of ``needle`` in the query text."""
        at = self.text.find(needle)
        if at < 0:
            return "(1:1)"
        line = self.text.count("\n", 0, at) + 1
        column = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return f"({line}:{column})"
