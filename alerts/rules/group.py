"""Evaluating one rule group at one time: recording rules write series, alerting rules step
their state and write ``ALERTS``/``ALERTS_FOR_STATE``; series that vanish get stale markers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from alerts.promql import Engine, PromQLError, QueryResult
from alerts.rules.model import GroupSpec, RuleSpec
from alerts.rules.state import Alert, AlertState, Found, Labels, LimitError, step, to_send
from alerts.rules.templates import QuerySample, expand
from collectors.store import STALE_NAN

log = logging.getLogger(__name__)

ALERTS = "ALERTS"
ALERTS_FOR_STATE = "ALERTS_FOR_STATE"


class Appender(Protocol):
    """Where rule output goes (the store)."""

    def append(self, series: Mapping[str, str] | Labels, ts_ms: int, value: float) -> None: ...


@dataclass
class RuleStatus:
    """Health of a rule after its last evaluation, for ``/api/v1/rules``."""

    health: str = "unknown"
    last_error: str = ""
    last_evaluation_ms: int = 0
    evaluation_seconds: float = 0.0


@dataclass
class EvalContext:
    """What every group evaluation shares."""

    engine: Engine
    appender: Appender
    external_labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""
    resend_delay_ms: int = 60_000


def _samples(result: QueryResult) -> list[tuple[Labels, float]]:
    if result.type == "scalar":
        return [((), result.scalar)]
    if result.type == "vector":
        return [(s.labels, float(s.values[0])) for s in result.series]
    raise PromQLError(f"rule result is not a vector or scalar (got {result.type})")


def _drop_name(labels: Labels) -> Labels:
    return tuple(p for p in labels if p[0] != "__name__")


class GroupState:
    """A group's rules and their state: active alerts, health, series written last time."""

    def __init__(self, spec: GroupSpec, interval_ms: int) -> None:
        self.spec = spec
        self.interval_ms = spec.interval_ms or interval_ms
        self.alerts: list[dict[Labels, Alert]] = [{} for _ in spec.rules]
        self.status: list[RuleStatus] = [RuleStatus() for _ in spec.rules]
        self.previous: list[set[Labels]] = [set() for _ in spec.rules]
        self.last_evaluation_ms = 0
        self.last_duration_s = 0.0
        self.failures = 0

    def adopt(self, old: GroupState) -> None:
        """Carry state over from the same group before a reload (rules matched by name+kind)."""
        by_key: dict[tuple[str, str, str], list[int]] = {}
        for i, r in enumerate(old.spec.rules):
            by_key.setdefault(_rule_key(r), []).append(i)
        for i, r in enumerate(self.spec.rules):
            candidates = by_key.get(_rule_key(r))
            if candidates:
                j = candidates.pop(0)
                self.alerts[i] = old.alerts[j]
                self.status[i] = old.status[j]
                self.previous[i] = old.previous[j]
        self.last_evaluation_ms = old.last_evaluation_ms
        self.last_duration_s = old.last_duration_s
        self.failures = old.failures

    def evaluate(self, ctx: EvalContext, ts: int) -> list[tuple[RuleSpec, list[Alert]]]:
        """Evaluate every rule in order at ``ts``; returns the alerts to send, by rule."""
        offset = self.spec.query_offset_ms or 0
        at = ts - offset
        sends: list[tuple[RuleSpec, list[Alert]]] = []
        for i, rule in enumerate(self.spec.rules):
            status = self.status[i]
            status.last_evaluation_ms = ts
            started = time.perf_counter()
            try:
                result = ctx.engine.instant(rule.expr, at)
                samples = _samples(result)
                if rule.kind == "record":
                    written = self._record(rule, samples)
                else:
                    written = self._alert(ctx, i, rule, samples, at, ts)
            except (PromQLError, LimitError, ValueError) as e:
                status.evaluation_seconds = time.perf_counter() - started
                self.failures += 1
                status.health = "err"
                status.last_error = str(e)
                log.warning(
                    "rule evaluation failed: %s",
                    e,
                    extra={"group": self.spec.name, "rule": rule.name},
                )
                if isinstance(e, LimitError):
                    self._write_stale(ctx, i, set(), at)
                continue
            status.evaluation_seconds = time.perf_counter() - started
            status.health = "ok"
            status.last_error = ""
            for labels, value in written:
                ctx.appender.append(labels, at, value)
            self._write_stale(ctx, i, {lb for lb, _ in written}, at)
            if rule.kind == "alert":
                alerts = to_send(self.alerts[i], ts, ctx.resend_delay_ms, self.interval_ms)
                if alerts:
                    sends.append((rule, alerts))
        self.last_evaluation_ms = ts
        return sends

    def _write_stale(self, ctx: EvalContext, i: int, now: set[Labels], at: int) -> None:
        for labels in self.previous[i] - now:
            ctx.appender.append(labels, at, STALE_NAN)
        self.previous[i] = now

    def _record(
        self, rule: RuleSpec, samples: list[tuple[Labels, float]]
    ) -> list[tuple[Labels, float]]:
        out: dict[Labels, float] = {}
        extra = dict(rule.labels)
        for labels, value in samples:
            lb = dict(labels)
            lb.update(extra)
            lb["__name__"] = rule.name
            key = tuple(sorted(lb.items()))
            if key in out:
                raise ValueError(
                    "vector contains metrics with the same labelset after applying rule labels"
                )
            out[key] = value
        return list(out.items())

    def _alert(
        self,
        ctx: EvalContext,
        i: int,
        rule: RuleSpec,
        samples: list[tuple[Labels, float]],
        at: int,
        ts: int,
    ) -> list[tuple[Labels, float]]:
        name = f"__alert_{rule.name}"

        def query(q: str) -> list[QuerySample]:
            return [QuerySample(dict(lb), v) for lb, v in _samples(ctx.engine.instant(q, at))]

        found: dict[Labels, Found] = {}
        for labels, value in samples:
            lmap = dict(labels)
            lb = dict(_drop_name(labels))
            for k, v in rule.labels:
                lb[k] = expand(v, name, lmap, value, ctx.external_labels, ctx.external_url, query)
            lb["alertname"] = rule.name
            key = tuple(sorted(lb.items()))
            annotations = tuple(
                (k, expand(v, name, lmap, value, ctx.external_labels, ctx.external_url, query))
                for k, v in rule.annotations
            )
            if key in found:
                raise ValueError(
                    "vector contains metrics with the same labelset after applying alert labels"
                )
            found[key] = Found(annotations, value)
        step(self.alerts[i], found, ts, rule.for_ms, rule.keep_firing_for_ms, self.spec.limit)
        out: list[tuple[Labels, float]] = []
        for alert in self.alerts[i].values():
            if alert.state is AlertState.INACTIVE:
                continue
            state = {"alertstate": alert.state.value, "__name__": ALERTS}
            out.append((tuple(sorted({**dict(alert.labels), **state}.items())), 1.0))
            out.append(
                (
                    tuple(sorted({**dict(alert.labels), "__name__": ALERTS_FOR_STATE}.items())),
                    float(alert.active_at // 1000),
                )
            )
        return out

    def active_alerts(self) -> list[tuple[RuleSpec, Alert]]:
        """Pending, firing and recently resolved alerts of every alerting rule."""
        return [
            (rule, alert)
            for rule, alerts in zip(self.spec.rules, self.alerts, strict=True)
            for alert in alerts.values()
        ]


def _rule_key(rule: RuleSpec) -> tuple[str, str, str]:
    return (rule.kind, rule.name, rule.expr)


def due(last_ms: int, interval_ms: int, now_ms: int, offset_ms: int) -> int:
    """The next evaluation time after ``last_ms`` on the group's grid (``offset`` staggers
    groups like Prometheus' hash-based offsets)."""
    base = (now_ms - offset_ms) // interval_ms * interval_ms + offset_ms
    if base <= last_ms:
        base += interval_ms * max(1, math.ceil((last_ms - base + 1) / interval_ms))
    return base


def stagger_ms(key: str, interval_ms: int) -> int:
    """A stable offset inside the interval so that groups do not all start together."""
    h = 0xCBF29CE484222325
    for b in key.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % interval_ms


def groups_of(specs: Sequence[GroupSpec], interval_ms: int) -> list[GroupState]:
    """Fresh state for each group."""
    return [GroupState(s, interval_ms) for s in specs]
