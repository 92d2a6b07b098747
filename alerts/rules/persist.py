"""Alert state on disk: every group's pending, firing and recently resolved alerts.

Saved after each round (after its notifications were queued), read at start, so a restart
keeps ``activeAt`` (no ``for`` clock restarts) and what was sent.

The file is a record log (:mod:`tsdb.recordlog`): a *base* holding every alert, then one
*change* record per round holding only what that round changed: alerts that appeared or
went, the times and value of those whose state moved, the value alone of those whose value
alone moved, the numbers of those sent again under their times of sending, the annotations
that changed (or the notes that print them with the value, see :mod:`alerts.rules.notes`,
which change only when the rule or the series does). A cluster-wide incident leaves tens of
thousands of alerts active, and a round changes few of them; writing them all every round
cost more than evaluating the rules. Each alert has a number in the file, so a change names
it in a few bytes; a record names each rule it holds alerts of once (an expression is often
longer than an alert's labels), and its rows name the rule by its place there. When the
changes have grown past the size of the base, the next save writes a new base in place of
the whole file (atomically), and so does the first save after a start or after a failed
write: a change record is only ever appended behind the state it changes.

Records are appended through the OS as they are made (no fsync), so a crash of the process
loses nothing; a torn last record (a crash of the machine mid-write) is the only loss, one
round's changes. Files written in earlier formats are read too: a single snapshot
(``_SNAPSHOT``, before the change records existed), and records whose rows name their group
and rule in full.
"""

from __future__ import annotations

import json
import logging
import math
import operator
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from alerts.rules.group import GroupState, _rule_key
from alerts.rules.notes import notes_from_json, notes_json
from alerts.rules.state import Alert, AlertState, Labels
from tsdb.recordlog import RecordWriter, frame, read_records, write_atomically

log = logging.getLogger(__name__)

_SNAPSHOT = 1
# Rows naming their group and rule in full (read, no longer written).
_BASE_NAMED = 2
_CHANGES_NAMED = 3
# Rows naming their rule by its place in the record's table of rules.
_BASE = 4
_CHANGES = 5
FILE = "rules.state"
# Changes are appended until they outgrow the base, or this, whichever is larger.
REWRITE_AFTER_BYTES = 1 << 20

# A rule within its group: (kind, name, expr) and which of the rules with that key it is.
_RuleId = tuple[str, str, str, int]
# What a change record compares: state, value and the alert's times.
_Scalars = tuple[str, float | str, int, int, int, int, int, int]


_ENCODER = msgspec.json.Encoder()


def _json(payload: dict[str, Any]) -> bytes:
    """A record's payload as compact JSON, by msgspec: a base of 46,000 alerts in a sixth
    of the time ``json.dumps`` takes. Values are finite numbers here (see :func:`_number`);
    a text that is not valid UTF-8 (a lone surrogate) is written by ``json.dumps``."""
    try:
        return _ENCODER.encode(payload)
    except msgspec.EncodeError:
        return json.dumps(payload, separators=(",", ":")).encode()


# What float() reads back: msgspec writes NaN and the infinities as null.
_NON_FINITE = {math.inf: "+Inf", -math.inf: "-Inf"}


def _number(value: float) -> float | str:
    """An alert's value as the file holds it: a number, or a text for NaN and infinities."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else _NON_FINITE[value]


def _scalars(a: Alert) -> _Scalars:
    return (
        a.state._value_,  # not .value: a descriptor call, once per alert and round
        _number(a.value),
        a.active_at,
        a.fired_at,
        a.resolved_at,
        a.last_sent_at,
        a.valid_until,
        a.keep_firing_since,
    )


class _Saved:
    """What the file says about one alert: its number, the alert object its scalars were
    read from, and the annotations (or notes) and value last written, which move in place
    (see :func:`alerts.rules.state.step`)."""

    __slots__ = ("alert", "notes", "number", "value")

    def __init__(self, number: int, alert: Alert) -> None:
        self.number = number
        self.alert = alert
        self.notes = alert.notes
        self.value = alert.value


def _rules(g: GroupState) -> list[tuple[int, _RuleId]]:
    """The alerting rules of a group: their index and their id."""
    seen: dict[tuple[str, str, str], int] = {}
    out = []
    for i, r in enumerate(g.spec.rules):
        key = _rule_key(r)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        if r.kind == "alert":
            out.append((i, (*key, occurrence)))
    return out


class _RuleTable:
    """The rules that one record's rows name, each written once (a rule's expression is
    often longer than an alert's labels)."""

    def __init__(self) -> None:
        self.rules: list[tuple[str, _RuleId]] = []
        self._index: dict[tuple[str, _RuleId], int] = {}

    def ref(self, group: str, rule: _RuleId) -> int:
        """The number of a rule in the table."""
        key = (group, rule)
        number = self._index.get(key)
        if number is None:
            number = self._index[key] = len(self.rules)
            self.rules.append(key)
        return number


def _full(number: int, rule: int, a: Alert, scalars: _Scalars) -> list[Any]:
    """An alert's row in the file: number, rule (in the record's table), labels,
    annotations (see :func:`notes_json`), scalars (tuples are written as JSON arrays, as
    lists would be)."""
    return [number, rule, a.labels, notes_json(a.notes), *scalars]


def _named(rows: list[list[Any]], rules: list[list[Any]]) -> list[list[Any]]:
    """Rows as the first format wrote them: number, group, rule, labels, annotations,
    scalars."""
    return [[row[0], *rules[row[1]], *row[2:]] for row in rows]


def _alert_of(row: list[Any]) -> Alert:
    labels = tuple(map(tuple, row[3]))
    state, value, *times = row[5:]
    return Alert(labels, notes_from_json(row[4]), AlertState(state), float(value), *times)


class StateLog:
    """The alert state file of one rule manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: RecordWriter | None = None
        self._known: dict[tuple[str, _RuleId], dict[Labels, _Saved]] = {}
        self._last: dict[str, int] = {}
        self._next = 0
        self._base_bytes = 0
        self._change_bytes = 0

    def restore(self, groups: Sequence[GroupState]) -> int:
        """Put saved alerts back into matching groups and rules; returns how many."""
        if not self.path.exists():
            return 0
        records = read_records(self.path.read_bytes()).records
        last: dict[str, int] = {}
        rows: dict[int, list[Any]] = {}
        legacy: dict[str, Any] | None = None
        for record in records:
            payload = json.loads(record.payload)
            if record.kind in (_BASE, _CHANGES):
                key = "alerts" if record.kind == _BASE else "put"
                payload[key] = _named(payload[key], payload["rules"])
            if record.kind == _SNAPSHOT:
                legacy, last, rows = payload, {}, {}
            elif record.kind in (_BASE, _BASE_NAMED):
                legacy, last = None, dict(payload["groups"])
                rows = {row[0]: row for row in payload["alerts"]}
            elif record.kind in (_CHANGES, _CHANGES_NAMED):
                _apply(payload, last, rows)
        if legacy is not None:
            return _restore_snapshot(legacy, groups)
        by_rule: dict[tuple[str, _RuleId], list[Alert]] = {}
        for row in rows.values():
            by_rule.setdefault((row[1], tuple(row[2])), []).append(_alert_of(row))
        restored = 0
        for g in groups:
            key = g.spec.key
            if key not in last:
                continue
            g.last_evaluation_ms = last[key]
            for i, rule in _rules(g):
                alerts = by_rule.get((key, rule))
                if alerts:
                    g.alerts[i] = {a.labels: a for a in alerts}
                    restored += len(alerts)
        return restored

    def save(self, groups: Sequence[GroupState]) -> None:
        """Write what changed in ``groups`` since the last save (all of it, the first
        time, after a failure, or when the changes outgrow the base). Raises OSError if
        the disk refuses; the next save then writes everything."""
        if self._writer is None or self._change_bytes > max(self._base_bytes, REWRITE_AFTER_BYTES):
            self._save_base(groups)
            return
        try:
            self._save_changes(groups)
        except OSError:
            self._close_writer()
            raise

    def _save_base(self, groups: Sequence[GroupState]) -> None:
        self._close_writer()
        known: dict[tuple[str, _RuleId], dict[Labels, _Saved]] = {}
        alerts: list[list[Any]] = []
        table = _RuleTable()
        number = 0
        for g in groups:
            key = g.spec.key
            for i, rule in _rules(g):
                saved = known[key, rule] = {}
                if not g.alerts[i]:
                    continue
                ref = table.ref(key, rule)
                for labels, a in g.alerts[i].items():
                    scalars = _scalars(a)
                    saved[labels] = _Saved(number, a)
                    alerts.append(_full(number, ref, a, scalars))
                    number += 1
        last = {g.spec.key: g.last_evaluation_ms for g in groups}
        payload = {"groups": last, "rules": table.rules, "alerts": alerts}
        data = frame(_BASE, _json(payload))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, data)
        self._writer = RecordWriter(self.path)
        self._known, self._last, self._next = known, last, number
        self._base_bytes, self._change_bytes = len(data), 0

    def _save_changes(self, groups: Sequence[GroupState]) -> None:
        put: list[list[Any]] = []
        update: list[list[Any]] = []
        # Alerts whose value alone moved (most, in a round): number, value, number...
        values: list[float | str] = []
        # Alerts whose times of sending alone moved, by those times: sent together.
        sent: dict[tuple[int, int], list[int]] = {}
        annotations: list[list[Any]] = []
        gone: list[int] = []
        known = self._known
        number = self._next
        current: set[tuple[str, _RuleId]] = set()
        last: dict[str, int] = {}
        table = _RuleTable()
        for g in groups:
            key = g.spec.key
            if self._last.get(key) != g.last_evaluation_ms:
                last[key] = g.last_evaluation_ms
            for i, rule in _rules(g):
                current.add((key, rule))
                saved = known.setdefault((key, rule), {})
                alerts = g.alerts[i]
                ref: int | None = None
                entries: Iterable[_Saved | None]
                if len(saved) == len(alerts) and all(map(operator.is_, saved, alerts)):
                    # The same labels in the same order as saved (dicts keep it, and a
                    # round mostly adds and removes no alert): no lookup by labels.
                    entries = saved.values()
                else:
                    entries = map(saved.get, alerts)
                for (labels, a), entry in zip(alerts.items(), entries, strict=True):
                    if entry is None:
                        scalars = _scalars(a)
                        saved[labels] = _Saved(number, a)
                        if ref is None:
                            ref = table.ref(key, rule)
                        put.append(_full(number, ref, a, scalars))
                        number += 1
                        continue
                    if entry.alert is not a:
                        # Alerts whose state or times change are replaced (see
                        # state.step): another object, another state than saved.
                        was, entry.alert = entry.alert, a
                        if (
                            a.state is not was.state
                            or a.active_at != was.active_at
                            or a.fired_at != was.fired_at
                            or a.resolved_at != was.resolved_at
                            or a.keep_firing_since != was.keep_firing_since
                        ):
                            update.append([entry.number, *_scalars(a)])
                            entry.value = a.value
                        elif a.last_sent_at != was.last_sent_at or a.valid_until != was.valid_until:
                            # Sent again (every firing alert, every few rounds).
                            sent.setdefault((a.last_sent_at, a.valid_until), []).append(
                                entry.number
                            )
                    if a.value != entry.value:
                        # The value alone moved, in place (most alerts of a round).
                        values += (entry.number, _number(a.value))
                        entry.value = a.value
                    if entry.notes is not a.notes:
                        if entry.notes != a.notes:
                            annotations.append([entry.number, notes_json(a.notes)])
                        entry.notes = a.notes
                if len(saved) != len(alerts):
                    for labels in saved.keys() - alerts.keys():
                        gone.append(saved.pop(labels).number)
        for rule_key in [k for k in known if k not in current]:
            gone.extend(s.number for s in known.pop(rule_key).values())
        if not (put or update or values or sent or annotations or gone or last):
            self._next = number
            return
        payload: dict[str, Any] = {
            "groups": last,
            "rules": table.rules,
            "put": put,
            "update": update,
            "values": values,
            "sent": [[at, until, numbers] for (at, until), numbers in sent.items()],
            "annotations": annotations,
            "gone": gone,
        }
        data = frame(_CHANGES, _json(payload))
        assert self._writer is not None
        self._next = number
        # The bookkeeping above already holds this round: a failed write makes the next
        # save a base (see save), which does not read it.
        self._writer.write(data)
        self._last.update(last)
        self._change_bytes += len(data)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        """Close the file; the next save writes a base."""
        self._close_writer()


def _apply(payload: dict[str, Any], last: dict[str, int], rows: dict[int, list[Any]]) -> None:
    """One change record, applied to the state read so far."""
    last.update(payload["groups"])
    for row in payload["put"]:
        rows[row[0]] = row
    for number, *scalars in payload["update"]:
        row = rows.get(number)
        if row is not None:
            row[5:] = scalars
    values = payload.get("values", ())
    for number, value in zip(values[0::2], values[1::2], strict=True):
        row = rows.get(number)
        if row is not None:
            row[6] = value
    for at, until, numbers in payload.get("sent", ()):
        for number in numbers:
            row = rows.get(number)
            if row is not None:
                row[10:12] = at, until
    for number, texts in payload["annotations"]:
        row = rows.get(number)
        if row is not None:
            row[4] = texts
    for number in payload["gone"]:
        rows.pop(number, None)


def _unalert(x: list[Any]) -> Alert:
    return Alert(
        tuple(map(tuple, x[0])), tuple(map(tuple, x[1])), AlertState(x[2]), float(x[3]), *x[4:]
    )


def _restore_snapshot(state: dict[str, Any], groups: Sequence[GroupState]) -> int:
    """A file written as one snapshot: rules by (kind, name, expr)."""
    restored = 0
    for g in groups:
        saved = state.get(g.spec.key)
        if saved is None:
            continue
        g.last_evaluation_ms = saved["last"]
        by_key = {tuple(k): v for k, v in saved["rules"]}
        for i, r in enumerate(g.spec.rules):
            items = by_key.get(_rule_key(r))
            if items:
                g.alerts[i] = {a.labels: a for a in map(_unalert, items)}
                restored += len(items)
    return restored
