"""The alert state machine, exactly as Prometheus 3 runs it; pure, times in ms.

inactive → pending when the expression returns the series; pending → firing once it has
been active for ``for``; firing → inactive (resolved) when the series is gone, unless
``keep_firing_for`` holds it; a resolved alert is kept (and re-sent) for 15 minutes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from alerts.rules.notes import Notes

Labels = tuple[tuple[str, str], ...]

RESOLVED_RETENTION_MS = 15 * 60_000


class AlertState(enum.Enum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass
class Alert:
    """One alert of a rule, keyed by its labels. Times are ms; 0 means never.

    ``notes`` are its annotations, or :class:`Notes` that print them with the value when
    they are read (:attr:`annotations`)."""

    labels: Labels
    notes: Labels | Notes
    state: AlertState
    value: float
    active_at: int
    fired_at: int = 0
    resolved_at: int = 0
    last_sent_at: int = 0
    valid_until: int = 0
    keep_firing_since: int = 0
    # The annotations last printed from notes: for which value and notes, and the texts.
    # One tuple, swapped whole and checked when read, so that a reader in another thread
    # while the value moves (see step) never takes texts printed for another value.
    _printed: tuple[float, Notes, Labels] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def annotations(self) -> Labels:
        """The annotations as expanded with the alert's value."""
        notes = self.notes
        if type(notes) is not Notes:
            return notes  # type: ignore[return-value]
        value = self.value
        printed = self._printed
        if printed is not None and printed[1] is notes and same_value(printed[0], value):
            return printed[2]
        texts = notes.texts(value)
        if printed is not None and texts == printed[2]:
            # The same texts as before (most values print alike) are the same tuple, which
            # the notifier takes as unchanged at a glance.
            texts = printed[2]
        self._printed = (value, notes, texts)
        return texts

    def move(self, value: float, notes: Labels | Notes) -> None:
        """Take a new value and notes, in place (see :func:`step`)."""
        self.value = value
        self.notes = notes

    def __copy__(self) -> Alert:
        # copy.copy's generic path (reduce, then setstate) costs four times this, and a
        # round of a cluster-wide incident copies tens of thousands of alerts.
        # A dict copied whole costs two thirds of one filled in by update.
        twin = object.__new__(Alert)
        twin.__dict__ = self.__dict__.copy()
        return twin

    def needs_sending(self, ts: int, resend_delay_ms: int) -> bool:
        """Whether this evaluation should (re-)send it: Prometheus' ``needsSending``."""
        if self.state is AlertState.PENDING:
            return False
        if self.resolved_at > self.last_sent_at:
            return True
        return self.last_sent_at + resend_delay_ms < ts


class LimitError(Exception):
    """More alerts than the group's ``limit`` allows."""


class Found(NamedTuple):
    """What one evaluation returned for one alert: its templated annotations (or the
    notes that print them with the value) and value."""

    annotations: Labels | Notes
    value: float


def same_value(a: float, b: float) -> bool:
    """Equal and printed alike (``-0`` and ``0`` are equal but print differently)."""
    return a == b and (a != 0.0 or math.copysign(1.0, a) == math.copysign(1.0, b))


# Alerts made by this round's calls (by id, to keep them alive so that no id is reused),
# which readers have never seen: changed in place, not copied again.
Fresh = dict[int, Alert]


def _own(
    active: dict[Labels, Alert], labels: Labels, alert: Alert, fresh: Fresh | None = None
) -> Alert:
    """``alert`` (the one under ``labels``), replaced by a copy that this step may change
    (unless it is one of ``fresh``)."""
    if fresh is not None and fresh.get(id(alert)) is alert:
        return alert
    mine = active[labels] = alert.__copy__()
    if fresh is not None:
        fresh[id(mine)] = mine
    return mine


def step(
    active: dict[Labels, Alert],
    found: Mapping[Labels, Found],
    ts: int,
    for_ms: int,
    keep_firing_for_ms: int,
    limit: int = 0,
    fresh: Fresh | None = None,
) -> bool:
    """Advance ``active`` to time ``ts`` given the alerts the expression returned; returns
    whether an alert appeared, went or changed state (False: the same alerts are pending
    and firing as before, since the same times).

    An alert's value and annotations move in place, as Prometheus' do: most alerts' values
    move at every evaluation (rates), and readers meanwhile (the HTTP API) may show the
    new ones. Every other change replaces the alert by a changed copy, so that ``active``
    may be a shallow copy of a dict that readers still look at (the service evaluates a
    working copy of a group, see :mod:`alerts.rules.manager`), only the alerts whose state
    or times changed are copied, and the alert state file finds them by identity (see
    :mod:`alerts.rules.persist`). With ``fresh``, the alerts it makes are noted there, and
    those noted already are changed in place: a round that steps and sends an alert
    copies it once.

    Raises :class:`LimitError` (and forgets every alert, as Prometheus does) when more than
    ``limit`` alerts are pending or firing.
    """
    inactive, pending, firing = AlertState.INACTIVE, AlertState.PENDING, AlertState.FIRING
    moved = False
    for labels, f in found.items():
        current = active.get(labels)
        if current is not None and current.state is not inactive:
            # same_value and tuple equality, with their usual outcomes first.
            value, annotations = f.value, f.annotations
            if (
                current.value != value
                or (value == 0.0 and not same_value(current.value, value))
                or (current.notes is not annotations and current.notes != annotations)
            ):
                current.move(value, annotations)
            continue
        made = active[labels] = Alert(labels, f.annotations, pending, f.value, ts)
        if fresh is not None:
            fresh[id(made)] = made
        moved = True
    # Every alert found is in ``active`` now; the others went (or were gone already).
    gone = active.keys() - found.keys() if len(active) > len(found) else set()
    live = len(found)
    moved = _advance(active, gone, ts, for_ms, fresh) or moved
    for labels in gone:
        alert = active[labels]
        keep_firing = False
        if alert.state is firing and keep_firing_for_ms > 0:
            if alert.keep_firing_since == 0:
                alert = _own(active, labels, alert, fresh)
                alert.keep_firing_since = ts
            keep_firing = ts - alert.keep_firing_since < keep_firing_for_ms
        if alert.state is pending or (
            alert.resolved_at and ts - alert.resolved_at > RESOLVED_RETENTION_MS
        ):
            del active[labels]
            moved = True
            continue
        if alert.state is not inactive and not keep_firing:
            alert = _own(active, labels, alert, fresh)
            alert.state = inactive
            alert.resolved_at = ts
            moved = True
        if keep_firing:
            # Firing, held: counts as live; it cannot be pending.
            live += 1
    _check_limit(active, live, limit)
    return moved


def step_values(
    active: dict[Labels, Alert],
    moves: Iterable[tuple[Labels, float]],
    ts: int,
    for_ms: int,
    limit: int = 0,
    fresh: Fresh | None = None,
) -> bool:
    """:func:`step` when the expression returned exactly the alerts of ``active``, every one
    pending or firing, with the annotations they hold: ``moves`` are the labels and new
    value of those whose value changed (not ``same_value``). The steady round of a rule
    whose alerts stay: no map of what was found is made, and only the alerts that move
    are touched besides those pending or held by ``keep_firing_for``."""
    for labels, value in moves:
        active[labels].value = value
    moved = _advance(active, (), ts, for_ms, fresh)
    _check_limit(active, len(active), limit)
    return moved


def _advance(
    active: dict[Labels, Alert],
    gone: Container[Labels],
    ts: int,
    for_ms: int,
    fresh: Fresh | None,
) -> bool:
    """Of the alerts found (those of ``active`` not ``gone``), those held by
    keep_firing_for are let go and those pending long enough fire; whether one fired."""
    pending, moved = AlertState.PENDING, False
    # Only those pending or held can change: the others are passed over without a lookup
    # in ``gone`` (tens of thousands a round).
    todo = [
        labels
        for labels, a in active.items()
        if (a.keep_firing_since or a.state is pending) and labels not in gone
    ]
    for labels in todo:
        alert = active[labels]
        if alert.keep_firing_since:
            alert = _own(active, labels, alert, fresh)
            alert.keep_firing_since = 0
        if alert.state is pending and ts - alert.active_at >= for_ms:
            alert = _own(active, labels, alert, fresh)
            alert.state = AlertState.FIRING
            alert.fired_at = ts
            moved = True
    return moved


def _check_limit(active: dict[Labels, Alert], live: int, limit: int) -> None:
    if limit > 0 and live > limit:
        active.clear()
        raise LimitError(f"exceeded limit of {limit} with {live} alerts")


def to_send(
    active: dict[Labels, Alert],
    ts: int,
    resend_delay_ms: int,
    interval_ms: int,
    fresh: Fresh | None = None,
) -> list[Alert]:
    """Alerts this evaluation sends, marked as sent (Prometheus' ``sendAlerts``); like
    :func:`step`, it replaces the alerts it marks by marked copies (but those of
    ``fresh``, which it marks in place)."""
    pending = AlertState.PENDING
    # Alert.needs_sending, inlined: this looks at every alert of the rule every round.
    due = [
        (labels, a)
        for labels, a in active.items()
        if a.state is not pending
        and (a.resolved_at > a.last_sent_at or a.last_sent_at + resend_delay_ms < ts)
    ]
    # Valid for four intervals: survives two missed evaluations or failed sends.
    valid_until = ts + 4 * max(resend_delay_ms, interval_ms)
    out = []
    for labels, alert in due:
        sent = _own(active, labels, alert, fresh)
        sent.last_sent_at = ts
        sent.valid_until = valid_until
        # Its state and times never change again (see step): the sink may keep it.
        out.append(sent)
    return out
