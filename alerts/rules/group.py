"""Evaluating one rule group at one time: recording rules write series, alerting rules step
their state and write ``ALERTS``/``ALERTS_FOR_STATE``; series that vanish get stale markers.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt

from alerts.rules.model import GroupSpec, RuleSpec
from alerts.rules.notes import Notes, notes_of
from alerts.rules.output import F64, I32, Appender, RuleOutput
from alerts.rules.rows import I64, KnownRows
from alerts.rules.state import (
    Alert,
    AlertState,
    Found,
    Fresh,
    Labels,
    LimitError,
    step,
    step_values,
    to_send,
)
from alerts.rules.templates import Expander, Partial, QuerySample
from promql import Engine, PromQLError, QueryResult, RepeatCache
from promql.labelsets import LabelTable, factorize
from tsdb import STALE_NAN

log = logging.getLogger(__name__)

ALERTS = "ALERTS"
ALERTS_FOR_STATE = "ALERTS_FOR_STATE"

__all__ = [
    "ALERTS",
    "ALERTS_FOR_STATE",
    "Appender",
    "EvalContext",
    "GroupState",
    "RuleStatus",
    "written_metrics",
]

# A rule's labels and annotations with one series' labels filled in (see
# :meth:`Expander.partial`): the alert's labels (None when a label template reads the
# value), each annotation's name and partial expansion (None: expand it whole), and the
# notes that print them when read (None: expand them at each evaluation).
_Prepared = tuple[Labels | None, tuple[tuple[str, str | Partial | None], ...], Notes | None]
# What one series made of an alert: the series' labels, the alert's labels, its
# annotations and value, and what of them does not depend on the value (made the second
# time the series is seen).
_Entry = tuple[Labels, Labels, Found, _Prepared | None]

# Found(annotations, value) without the Python frame of a named tuple's ``__new__``: made
# for every alert whose value moved, at every evaluation.
_found: Callable[[tuple[Labels | Notes, float]], Found] = functools.partial(tuple.__new__, Found)
# An entry's alert labels and what it found.
_key_and_found: Callable[[_Entry], tuple[Labels, Found]] = operator.itemgetter(1, 2)
_key_of: Callable[[_Entry], Labels] = operator.itemgetter(1)


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


@dataclass
class _Recorded:
    """A recording rule's output before its series ids are known: rows of ``table`` (or
    label tuples, for a scalar result) and their values."""

    values: F64
    table: LabelTable | None = None
    labels: list[Labels] | None = None


def _samples(result: QueryResult) -> list[tuple[Labels, float]]:
    if result.type == "scalar":
        return [((), result.scalar)]
    if result.type == "vector":
        columns = result.columns()
        return list(zip(columns.labels(), columns.values.tolist(), strict=True))
    raise PromQLError(f"rule result is not a vector or scalar (got {result.type})")


def _rows(result: QueryResult) -> tuple[LabelTable, F64]:
    """A vector or scalar result as label rows and values."""
    if result.type == "scalar":
        return LabelTable.from_tuples([()]), np.array([result.scalar], dtype=np.float64)
    if result.type == "vector":
        columns = result.columns()
        return columns.table, columns.values
    raise PromQLError(f"rule result is not a vector or scalar (got {result.type})")


@dataclass
class _Seen:
    """An alerting rule's series of last evaluation (rules with pure templates): what each
    made of its alert and its value, by row; the rows that can be found by label codes
    (:attr:`rows` numbers them, :attr:`coded` gives their row)."""

    rows: KnownRows = field(default_factory=KnownRows)
    coded: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    values: F64 = field(default_factory=lambda: np.zeros(0))
    entries: list[_Entry] = field(default_factory=list)
    # Whether :attr:`values` moved on since the entries' own (see _values_moved).
    behind: bool = False


def written_metrics(spec: GroupSpec) -> set[str]:
    """The metrics a group writes while it is evaluated: its recorded series, and
    ``ALERTS``/``ALERTS_FOR_STATE`` if it has alerting rules."""
    written = {r.name for r in spec.rules if r.kind == "record"}
    if any(r.kind == "alert" for r in spec.rules):
        written |= {ALERTS, ALERTS_FOR_STATE}
    return written


def _set_label(labels: dict[str, str], name: str, value: str) -> None:
    """Set a label as Prometheus' label builder does: to "" means to remove it."""
    if value:
        labels[name] = value
    else:
        labels.pop(name, None)


def _pure_templates(rule: RuleSpec) -> bool:
    """Whether the rule's templates depend only on the series, its value and the external
    data: true unless one may call ``query`` (whose answer changes with the store)."""
    return not any("query" in text for _, text in (*rule.labels, *rule.annotations))


class GroupState:
    """A group's rules and their state: active alerts, health, series written last time."""

    def __init__(self, spec: GroupSpec, interval_ms: int) -> None:
        self.spec = spec
        self.interval_ms = spec.interval_ms or interval_ms
        self.alerts: list[dict[Labels, Alert]] = [{} for _ in spec.rules]
        self.status: list[RuleStatus] = [RuleStatus() for _ in spec.rules]
        self.outputs: list[RuleOutput] = [RuleOutput() for _ in spec.rules]
        self.last_evaluation_ms = 0
        self.last_duration_s = 0.0
        self.failures = 0
        # Prometheus expands an alert's templates at every evaluation; when they are pure,
        # the output for a series whose value did not change is the one of last time.
        self._pure = [_pure_templates(r) for r in spec.rules]
        self._noted = [r.kind == "alert" and _noted(r) for r in spec.rules]
        self._seen = [_Seen() for _ in spec.rules]
        # Whether a rule's alerts appeared, went or changed state at its last evaluation.
        self._moved = [True] * len(spec.rules)
        self._template_env: tuple[tuple[tuple[str, str], ...], str] | None = None
        self._written = written_metrics(spec)
        # Subexpressions over series that did not change since the last evaluation (most
        # of kube-state-metrics') keep their values.
        self._repeat = RepeatCache()

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
                self.outputs[i] = old.outputs[j]
        self.last_evaluation_ms = old.last_evaluation_ms
        self.last_duration_s = old.last_duration_s
        self.failures = old.failures

    def evaluate(self, ctx: EvalContext, ts: int) -> list[tuple[RuleSpec, list[Alert]]]:
        """Evaluate every rule in order at ``ts``; returns the alerts to send, by rule."""
        offset = self.spec.query_offset_ms or 0
        at = ts - offset
        sends: list[tuple[RuleSpec, list[Alert]]] = []
        env = (tuple(sorted(ctx.external_labels.items())), ctx.external_url)
        if env != self._template_env:
            self._seen = [_Seen() for _ in self.spec.rules]
            self._template_env = env
        # Rules read what earlier rules of the group wrote, so only subexpressions over
        # other metrics are shared between them.
        shared = ctx.engine.shared(self._written)
        for i, rule in enumerate(self.spec.rules):
            fresh: Fresh = {}
            status = self.status[i]
            status.last_evaluation_ms = ts
            started = time.perf_counter()
            recorded: _Recorded | None = None
            try:
                result = ctx.engine.instant(rule.expr, at, shared, self._repeat)
                if rule.kind == "record":
                    recorded = self._record(rule, result, self.outputs[i])
                else:
                    self._alert(ctx, i, rule, result, at, ts, fresh)
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
                    self._write_stale(ctx, i, np.zeros(0, dtype=np.int32), at)
                continue
            status.evaluation_seconds = time.perf_counter() - started
            status.health = "ok"
            status.last_error = ""
            if recorded is not None:
                refs, values = self._recorded_refs(ctx, i, recorded), recorded.values
            else:
                refs, values = self._alerts_written(ctx, i)
            ctx.appender.append_batch(refs, at, values)
            self._write_stale(ctx, i, refs, at)
            if rule.kind == "alert":
                alerts = to_send(self.alerts[i], ts, ctx.resend_delay_ms, self.interval_ms, fresh)
                if alerts:
                    # Their annotations printed here, off the event loop that hands them
                    # to the notifier.
                    for alert in alerts:
                        alert.annotations  # noqa: B018
                    sends.append((rule, alerts))
        self.last_evaluation_ms = ts
        return sends

    def _write_stale(self, ctx: EvalContext, i: int, now: I32, at: int) -> None:
        output = self.outputs[i]
        output.check(ctx.appender)
        gone = output.stale(now)
        if len(gone):
            ctx.appender.append_batch(gone, at, np.full(len(gone), STALE_NAN))

    def _record(self, rule: RuleSpec, result: QueryResult, output: RuleOutput) -> _Recorded:
        # As in Prometheus, a rule label set to "" removes the label.
        if result.type == "vector":
            columns = result.columns()
            table = columns.table
            written = (*rule.labels, ("__name__", rule.name))
            # Labels the series lack, set alike on all, keep distinct series distinct.
            distinct = table.unique and not any(name in table.names for name, _ in written)
            for name, text in written:
                code = table.strings.code(text) if text else 0
                table = table.with_column(name, np.full(len(table), code, dtype=np.int32))
            # The series written last time were found distinct: the same ones need no check.
            if (
                not distinct
                and not output.writes_as_last(table)
                and len(factorize(table.codes)[0]) < len(table)
            ):
                raise ValueError(
                    "vector contains metrics with the same labelset after applying rule labels"
                )
            return _Recorded(columns.values, table=table)
        # A scalar: one series.
        out: dict[Labels, float] = {}
        for labels, value in _samples(result):
            lb = dict(labels)
            for name, text in rule.labels:
                _set_label(lb, name, text)
            lb["__name__"] = rule.name
            key = tuple(sorted(lb.items()))
            if key in out:
                raise ValueError(
                    "vector contains metrics with the same labelset after applying rule labels"
                )
            out[key] = value
        return _Recorded(np.array(list(out.values()), dtype=np.float64), labels=list(out))

    def _recorded_refs(self, ctx: EvalContext, i: int, recorded: _Recorded) -> I32:
        if recorded.table is not None:
            return self.outputs[i].table_refs(ctx.appender, recorded.table)
        assert recorded.labels is not None
        return np.array([ctx.appender.ref(lb) for lb in recorded.labels], dtype=np.int32)

    def _alert(
        self,
        ctx: EvalContext,
        i: int,
        rule: RuleSpec,
        result: QueryResult,
        at: int,
        ts: int,
        fresh: Fresh,
    ) -> None:
        name = f"__alert_{rule.name}"

        def query(q: str) -> list[QuerySample]:
            return [QuerySample(dict(lb), v) for lb, v in _samples(ctx.engine.instant(q, at))]

        made: list[Expander] = []

        def expander() -> Expander:
            # Made when a template is expanded: at most rounds, no series needs one.
            if not made:
                made.append(Expander(name, ctx.external_labels, ctx.external_url, query))
            return made[0]

        pure = self._pure[i]
        table, values = _rows(result)
        seen = self._seen[i] if pure else _Seen()
        last = seen.entries
        # Each row's entry of last time: found by label codes, else (labels a query made
        # up, a querier without the store's codes) by label tuple.
        known = seen.rows.match(table)
        hits = known >= 0
        known[hits] = seen.coded[known[hits]]
        if pure and self._noted[i] and self._same_alerts(i, known, hits):
            self._moved[i] = self._values_moved(i, rule, seen, known, values, ts, fresh)
            return
        if seen.behind:
            # Rows found unchanged reuse their entry whole: it takes the value they hold.
            last = [
                (labels, key, _found((found[0], value)), prepared)
                for (labels, key, found, prepared), value in zip(
                    last, seen.values.tolist(), strict=True
                )
            ]
        misses = np.flatnonzero(~hits)
        missed = dict(zip(misses.tolist(), table.take(misses).tuples(), strict=True))
        if missed and last:
            index = {entry[0]: k for k, entry in enumerate(last)}
            for row, labels in missed.items():
                known[row] = index.get(labels, -1)
            hits = known >= 0
        # Series seen last time with the same value made the same alert (pure templates).
        same = np.zeros(len(table), dtype=bool)
        if hits.any():
            before, now = seen.values[known[hits]], values[hits]
            same[hits] = _unchanged(now, before)
        # A series with the same value as last time makes the same entry: only the others
        # are made again (rates move at every evaluation, many other values do not).
        n = len(table)
        redo = np.flatnonzero(~same).tolist()
        entries: list[_Entry] = (
            list(map(last.__getitem__, np.where(same, known, 0).tolist()))
            if len(redo) < n
            else cast(list[_Entry], [None] * n)
        )
        noted = pure and self._noted[i]
        rows, numbers = known.tolist(), values.tolist()
        for row in redo:
            o, value = rows[row], numbers[row]
            if o >= 0:
                labels, _, before, prepared = last[o]
                if prepared is None:
                    prepared = _prepare(expander(), rule, labels)
                key, _, notes = prepared
                if key is not None and notes is not None:
                    # Printed when read (sent, shown), not at every evaluation.
                    entry = (labels, key, _found((notes, value)), prepared)
                else:
                    key, annotations = _complete(expander(), rule, prepared, labels, value)
                    if annotations == before.annotations:
                        # The same texts (most values print as before): the same tuple,
                        # which the state machine and the state file take as unchanged
                        # at a glance.
                        annotations = before.annotations
                    entry = (labels, key, _found((annotations, value)), prepared)
            elif noted:
                # First sight, of a rule whose annotations are printed when read: the
                # preparation is all there is to do.
                labels = missed[row]
                prepared = _prepare(expander(), rule, labels)
                assert prepared[0] is not None and prepared[2] is not None
                entry = (labels, prepared[0], _found((prepared[2], value)), prepared)
            else:
                # First sight: series that come and go would never use a preparation.
                labels = missed[row]
                key, annotations = _expand(expander(), rule, labels, value)
                entry = (labels, key, _found((annotations, value)), None)
            entries[row] = entry
        found: dict[Labels, Found] = dict(map(_key_and_found, entries))
        if len(found) < n:
            raise ValueError(
                "vector contains metrics with the same labelset after applying alert labels"
            )
        if pure:
            seen.coded = seen.rows.remember(table)
            seen.values, seen.entries, seen.behind = values, entries, False
        self._moved[i] = True  # until step returns
        self._moved[i] = step(
            self.alerts[i],
            found,
            ts,
            rule.for_ms,
            rule.keep_firing_for_ms,
            self.spec.limit,
            fresh,
        )

    def _same_alerts(self, i: int, known: I64, hits: npt.NDArray[np.bool_]) -> bool:
        """Whether the rows are last evaluation's series, each once, and the rule holds
        their alerts alone: one per entry of last time, and as many, so every alert the
        rule holds was found then (pending or firing; none resolved or held)."""
        n = len(known)
        if n != len(self._seen[i].entries) or n != len(self.alerts[i]) or not hits.all():
            return False
        each = np.zeros(n, dtype=bool)
        each[known] = True
        return bool(each.all())

    def _values_moved(
        self,
        i: int,
        rule: RuleSpec,
        seen: _Seen,
        known: I64,
        values: F64,
        ts: int,
        fresh: Fresh,
    ) -> bool:
        """The alerts of a rule whose series are last evaluation's (see
        :meth:`_same_alerts`) and whose annotations are notes: values move and pending
        alerts may fire (:func:`step_values`); returns whether one fired."""
        moving = np.flatnonzero(~_unchanged(values, seen.values[known]))
        entries = seen.entries
        # The entries keep the values they were made with: a full evaluation, the only
        # reader of those, takes them from :attr:`_Seen.values` (most values move at every
        # evaluation, and the entries are rebuilt only when the alerts change).
        keys = list(map(_key_of, map(entries.__getitem__, known[moving].tolist())))
        kept = seen.values.copy()
        kept[known] = values
        seen.values, seen.behind = kept, True
        moves = zip(keys, values[moving].tolist(), strict=True)
        return step_values(self.alerts[i], moves, ts, rule.for_ms, self.spec.limit, fresh)

    def _alerts_written(self, ctx: EvalContext, i: int) -> tuple[I32, F64]:
        """``ALERTS`` and ``ALERTS_FOR_STATE`` of the rule's pending and firing alerts."""
        output = self.outputs[i]
        output.check(ctx.appender)
        if not self._moved[i] and output.alerts_written is not None:
            # The same alerts in the same states: the same series and values.
            same_refs, same_values = output.alerts_written
            return same_refs.copy(), same_values.copy()
        last_alerts, last_for_state = output.alert_refs, output.for_state_refs
        alert_keys: list[tuple[Labels, str]] = []
        refs: list[int] = []
        values: list[float] = []
        # Series of alerts new since last time, created together: (position in refs, labels).
        new: list[tuple[int, Labels]] = []
        for alert in self.alerts[i].values():
            if alert.state is AlertState.INACTIVE:
                continue
            # The member's own attribute: ``.value`` is a descriptor call per alert.
            labels, state = alert.labels, alert.state._value_
            alerts_ref = last_alerts.get((labels, state))
            if alerts_ref is None:
                named = _named(labels, ALERTS, ("alertstate", state))
                new.append((len(refs), named))
                alerts_ref = -1
            for_state_ref = last_for_state.get(labels)
            if for_state_ref is None:
                new.append((len(refs) + 1, _named(labels, ALERTS_FOR_STATE)))
                for_state_ref = -1
            alert_keys.append((labels, state))
            refs += (alerts_ref, for_state_ref)
            values += (1.0, float(alert.active_at // 1000))
        written = np.array(refs, dtype=np.int32)
        if new:
            at = np.array([k for k, _ in new], dtype=np.int64)
            written[at] = ctx.appender.refs([lb for _, lb in new])
        made = written.tolist()
        output.alert_refs = dict(zip(alert_keys, made[0::2], strict=True))
        output.for_state_refs = {
            lb: ref for (lb, _), ref in zip(alert_keys, made[1::2], strict=True)
        }
        output.alerts_written = written, np.array(values, dtype=np.float64)
        return written.copy(), output.alerts_written[1].copy()

    def active_alerts(self) -> list[tuple[RuleSpec, Alert]]:
        """Pending, firing and recently resolved alerts of every alerting rule."""
        return [
            (rule, alert)
            for rule, alerts in zip(self.spec.rules, self.alerts, strict=True)
            for alert in alerts.values()
        ]


def _unchanged(now: F64, before: F64) -> npt.NDArray[np.bool_]:
    """Where values are the same and print alike (``same_value`` of each pair): NaN never
    is, ``-0`` is not ``0``."""
    same: npt.NDArray[np.bool_] = (now == before) & (
        (now != 0) | (np.signbit(now) == np.signbit(before))
    )
    return same


def _named(labels: Labels, name: str, *extra: tuple[str, str]) -> Labels:
    """An alert's labels as a series of metric ``name`` with ``extra`` labels, which
    replace the alert's own of the same names."""
    # An alert's labels are sorted by name (see _alert_key): each pair goes in at its place,
    # in place of the alert's own of that name (a first round names every alert's series).
    named = ("__name__", name)
    if labels and labels[0][0] > "__name__":
        # Label names mostly begin with a small letter: the name goes first.
        if not extra:
            return (named, *labels)
        out, pairs = [named, *labels], extra
    else:
        out, pairs = list(labels), (named, *extra)
    for pair in pairs:
        # (name,) sorts before every pair of that name and after those of smaller names.
        at = bisect.bisect_left(out, (pair[0],))
        if at < len(out) and out[at][0] == pair[0]:
            out[at] = pair
        else:
            out.insert(at, pair)
    return tuple(out)


def _alert_key(
    expander: Expander, rule: RuleSpec, labels: Labels, lmap: Mapping[str, str], value: float
) -> Labels:
    """The labels of the alert a series raises: its own, the rule's, ``alertname``
    (``lmap`` is ``labels`` as a dict)."""
    lb = dict(lmap)
    lb.pop("__name__", None)
    if _fixed_labels(rule):
        for k, v in rule.labels:
            _set_label(lb, k, v)
    else:
        for k, v in rule.labels:
            _set_label(lb, k, expander.expand(v, lmap, value))
    lb["alertname"] = rule.name
    return tuple(sorted(lb.items()))


def _expand(
    expander: Expander, rule: RuleSpec, labels: Labels, value: float
) -> tuple[Labels, Labels]:
    """An alert's labels and annotations, every template expanded."""
    lmap = dict(labels)
    annotations = tuple((k, expander.expand(v, lmap, value)) for k, v in rule.annotations)
    return _alert_key(expander, rule, labels, lmap, value), annotations


def _prepare(expander: Expander, rule: RuleSpec, labels: Labels) -> _Prepared:
    """What of a series' alert does not depend on its value: once per series, not at every
    evaluation in which the value moved (rates move at every one)."""
    lmap = dict(labels)
    key = None
    if _fixed_labels(rule) or all(
        isinstance(expander.partial(v, lmap), str) for _, v in rule.labels
    ):
        key = _alert_key(expander, rule, labels, lmap, 0.0)
    partials = tuple([(k, expander.partial(v, lmap)) for k, v in rule.annotations])
    # The pieces' kinds are the rule's, whatever the labels (see _noted).
    return key, partials, Notes(partials) if _noted(rule) else notes_of(partials)  # type: ignore[arg-type]


def _complete(
    expander: Expander, rule: RuleSpec, prepared: _Prepared, labels: Labels, value: float
) -> tuple[Labels, Labels]:
    """:func:`_expand` from what :func:`_prepare` made for the same series."""
    key, partials, _ = prepared
    if key is None:
        return _expand(expander, rule, labels, value)
    lmap: dict[str, str] | None = None
    annotations = []
    for (k, text), (_, partial) in zip(rule.annotations, partials, strict=True):
        if isinstance(partial, str):
            annotations.append((k, partial))
            continue
        done = None if partial is None else expander.finish(partial, value)
        if done is None:
            if lmap is None:
                lmap = dict(labels)
            done = expander.expand(text, lmap, value)
        annotations.append((k, done))
    return key, tuple(annotations)


@functools.lru_cache(maxsize=4096)
def _fixed_labels(rule: RuleSpec) -> bool:
    """Whether the rule's labels are texts, not templates (most rules: a severity)."""
    return not any("{{" in text for _, text in rule.labels)


@functools.lru_cache(maxsize=4096)
def _noted(rule: RuleSpec) -> bool:
    """Whether every series' alert of ``rule`` keeps its annotations as notes (see
    :func:`_prepare`): its labels do not read the value, its annotations are plain and
    print every value. Which pieces a template has does not depend on the labels."""
    expander = Expander(f"__alert_{rule.name}")
    if not all(isinstance(expander.partial(v, {}), str) for _, v in rule.labels):
        return False
    return notes_of(tuple((k, expander.partial(v, {})) for k, v in rule.annotations)) is not None


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
