"""Alerts in, notifications into the outbox: routing, aggregation groups, muting, dedup.

As Alertmanager: each alert is routed (:mod:`alerts.notify.route`) into the aggregation
group ``{route key}:{group labels}`` of every route that takes it. A new group is flushed
after ``group_wait`` (at once if its alert started longer ago than that), then every
``group_interval``. A flush drops alerts muted by a silence or an inhibit rule, and queues a
notification for each integration of the route's receiver when the notification log says
something changed (a new firing alert, a newly resolved one, all resolved) or
``repeat_interval`` has passed. Resolved alerts leave the group after a flush; an empty group
is removed. Integrations that forward to an Alertmanager get every alert as it comes
instead, since Alertmanager groups by itself.

The notification log is written with each queued notification (see
:mod:`alerts.notify.outbox`); groups and their alerts are saved in ``notify.state``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from alerts.notify.inhibit import Inhibitor, build_inhibitions
from alerts.notify.model import Labels, NotifyAlert, fingerprints
from alerts.notify.outbox import LogEntry, Outbox, log_key
from alerts.notify.payload import build_payload, group_key, postable_alerts
from alerts.notify.route import Route, build_route
from alerts.notify.silences import Silences
from alerts.notify.targets import Target, build_targets
from alerts.settings import NotifySettings
from tsdb.recordlog import frame, read_records, write_atomically

_SNAPSHOT = 1
FILE = "notify.state"
# A route taking an alert, and the key and labels of the aggregation group it joins there.
_Routed = tuple[Route, str, Labels]
_ROUTED_MAX = 1 << 18


def needs_update(
    last: LogEntry | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    now_ms: int,
    repeat_ms: int,
    send_resolved: bool,
) -> bool:
    """Whether a flush notifies (Alertmanager's ``DedupStage.needsUpdate``)."""
    if last is None:
        return bool(firing)
    if not firing <= last.firing:
        return True
    if not firing:
        # Alerts that fired and resolved between two notifications were never announced.
        return bool(last.firing)
    if send_resolved and not resolved <= last.resolved:
        return True
    return last.ts_ms + repeat_ms < now_ms


@dataclass
class AggrGroup:
    """Alerts of one route with the same group labels."""

    key: str
    route: Route
    labels: Labels
    next_flush_ms: int
    alerts: dict[str, NotifyAlert] = field(default_factory=dict)
    has_flushed: bool = False


def merge(old: NotifyAlert | None, new: NotifyAlert, now_ms: int) -> NotifyAlert:
    """A re-sent alert keeps the start of the episode it continues."""
    if old is None or old.resolved(now_ms) or old.starts_at >= new.starts_at:
        return new
    return NotifyAlert(new.labels, new.annotations, old.starts_at, new.ends_at, new.generator_url)


class Dispatcher:
    """Routes, groups and mutes alerts, and queues the notifications."""

    def __init__(
        self,
        settings: NotifySettings,
        outbox: Outbox,
        silences: Silences,
        state_dir: Path,
        external_url: str = "",
    ) -> None:
        self.route = build_route(settings.route)
        self.targets = build_targets(settings.receivers)
        self.inhibitions = build_inhibitions(settings.inhibit_rules)
        self.outbox = outbox
        self.silences = silences
        self.external_url = external_url
        self.path = state_dir / FILE
        self.alerts: dict[str, NotifyAlert] = {}
        self.groups: dict[str, AggrGroup] = {}
        self._by_receiver: dict[str, list[Target]] = {}
        # Whether groups or alerts changed since the last save.
        self._dirty = True
        for t in self.targets.values():
            self._by_receiver.setdefault(t.receiver, []).append(t)
        self._by_kind = {
            (receiver, grouped): [t for t in targets if t.grouped is grouped]
            for receiver, targets in self._by_receiver.items()
            for grouped in (True, False)
        }
        # Alerts are re-sent every few rounds with the same labels: where they go is
        # found once.
        self._routed: dict[Labels, tuple[_Routed, ...]] = {}
        # Each alert's text in the state file, but for its times (see _alert_texts).
        self._texts: dict[str, tuple[NotifyAlert, str, str]] = {}
        self._load()

    def _grouped(self, receiver: str) -> list[Target]:
        return self._by_kind.get((receiver, True), [])

    def _forwarding(self, receiver: str) -> list[Target]:
        return self._by_kind.get((receiver, False), [])

    def _routes(self, labels: Labels) -> tuple[_Routed, ...]:
        """The routes that take an alert with ``labels``, each with the key and labels of
        the aggregation group it joins there."""
        routed = self._routed.get(labels)
        if routed is None:
            if len(self._routed) >= _ROUTED_MAX:
                self._routed.clear()
            out = []
            for route in self.route.match(dict(labels)):
                group_labels = route.group_labels(labels)
                out.append((route, group_key(route.key, group_labels), group_labels))
            routed = self._routed[labels] = tuple(out)
        return routed

    def _inhibitor(self, now_ms: int) -> Inhibitor:
        if not self.inhibitions:
            return Inhibitor((), ())
        firing = [dict(a.labels) for a in self.alerts.values() if not a.resolved(now_ms)]
        return Inhibitor(self.inhibitions, firing)

    def muted(self, alert: NotifyAlert, now_ms: int, inhibitor: Inhibitor) -> bool:
        """Whether a silence or an inhibit rule mutes the alert now."""
        labels = dict(alert.labels)
        return bool(self.silences.muted_by(labels, now_ms)) or inhibitor.muted(labels)

    def put(self, alerts: Iterable[NotifyAlert], now_ms: int, send: bool = True) -> int:
        """Take new or updated alerts; forwards to Alertmanagers at once when ``send``.
        Returns how many forwarding notifications were queued."""
        forward: dict[str, list[NotifyAlert]] = {}
        items = list(alerts)
        if items:
            self._dirty = True
        for fp, incoming in zip(fingerprints([a.labels for a in items]), items, strict=True):
            a = merge(self.alerts.get(fp), incoming, now_ms)
            self.alerts[fp] = a
            for route, key, group_labels in self._routes(a.labels):
                if self._grouped(route.receiver):
                    self._join(route, key, group_labels, fp, a, now_ms)
                if send:
                    for t in self._forwarding(route.receiver):
                        forward.setdefault(t.id, []).append(a)
        if not forward:
            return 0
        inhibitor = self._inhibitor(now_ms)
        queued = 0
        for target_id, items in forward.items():
            unique = {a.fingerprint: a for a in items if not self.muted(a, now_ms, inhibitor)}
            if unique:
                body = json.dumps(postable_alerts(list(unique.values()))).encode()
                self.outbox.enqueue(target_id, body, now_ms)
                queued += 1
        return queued

    def _insert(self, route: Route, a: NotifyAlert, now_ms: int) -> None:
        labels = route.group_labels(a.labels)
        self._join(route, group_key(route.key, labels), labels, a.fingerprint, a, now_ms)

    def _join(
        self, route: Route, key: str, labels: Labels, fp: str, a: NotifyAlert, now_ms: int
    ) -> None:
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = AggrGroup(key, route, labels, now_ms + route.group_wait_ms)
        group.alerts[fp] = a
        if not group.has_flushed and a.starts_at + route.group_wait_ms < now_ms:
            group.next_flush_ms = min(group.next_flush_ms, now_ms)

    def next_flush_ms(self) -> int | None:
        """When the next group is due, if any."""
        return min((g.next_flush_ms for g in self.groups.values()), default=None)

    def flush(self, now_ms: int) -> int:
        """Flush every due group; returns how many notifications were queued."""
        due = [g for g in self.groups.values() if g.next_flush_ms <= now_ms]
        if not due:
            return 0
        self._dirty = True
        inhibitor = self._inhibitor(now_ms)
        queued = 0
        for group in due:
            queued += self._flush_group(group, now_ms, inhibitor)
        live = {fp for g in self.groups.values() for fp in g.alerts}
        for fp, a in list(self.alerts.items()):
            if a.resolved(now_ms) and fp not in live:
                del self.alerts[fp]
        self.save()
        return queued

    def _flush_group(self, group: AggrGroup, now_ms: int, inhibitor: Inhibitor) -> int:
        group.next_flush_ms = now_ms + group.route.group_interval_ms
        group.has_flushed = True
        if inhibitor.idle and not self.silences.active(now_ms):
            # Nothing can mute (a group holds up to every alert of a rule).
            members = list(group.alerts.values())
        else:
            members = [a for a in group.alerts.values() if not self.muted(a, now_ms, inhibitor)]
        queued = 0
        if members:
            firing = frozenset(a.fingerprint for a in members if not a.resolved(now_ms))
            resolved = frozenset(a.fingerprint for a in members if a.resolved(now_ms))
            for t in self._grouped(group.route.receiver):
                last = self.outbox.log.get(log_key(group.key, t.id))
                repeat = group.route.repeat_interval_ms
                if not needs_update(last, firing, resolved, now_ms, repeat, t.send_resolved):
                    continue
                entry = LogEntry(firing, resolved, now_ms)
                shown = (
                    members if t.send_resolved else [a for a in members if not a.resolved(now_ms)]
                )
                if not shown:
                    self.outbox.record_log(group.key, t.id, entry)
                    continue
                body = build_payload(
                    t.receiver,
                    shown,
                    group.labels,
                    group.key,
                    self.external_url,
                    now_ms,
                    t.max_alerts,
                )
                self.outbox.enqueue(t.id, json.dumps(body).encode(), now_ms, group.key, entry)
                queued += 1
        for fp, a in list(group.alerts.items()):
            if a.resolved(now_ms):
                del group.alerts[fp]
        if not group.alerts:
            del self.groups[group.key]
        return queued

    def save(self) -> None:
        """Write the groups and their alerts, unless nothing changed since the last save
        (the service saves after every rule round; most rounds send nothing)."""
        if not self._dirty:
            return
        texts = self._alert_texts()
        groups = json.dumps(
            [
                [
                    g.key,
                    g.route.key,
                    list(map(list, g.labels)),
                    g.next_flush_ms,
                    g.has_flushed,
                    sorted(g.alerts),
                ]
                for g in self.groups.values()
            ]
        )
        # json.dumps({"alerts": [...], "groups": [...]}), the alerts' rows joined from
        # their texts.
        state = f'{{"alerts": [{", ".join(texts)}], "groups": {groups}}}'
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, frame(_SNAPSHOT, state.encode()))
        self._dirty = False

    def _alert_texts(self) -> list[str]:
        """Each alert's row of the state file. The parts of a row that stay the same while
        an alert is re-sent (labels, annotations, link) are encoded once: the sink hands
        over the same tuples as long as they do not change."""
        last = self._texts
        now: dict[str, tuple[NotifyAlert, str, str]] = {}
        out = []
        for fp, a in self.alerts.items():
            known = last.get(fp)
            if (
                known is None
                or known[0].labels is not a.labels
                or known[0].annotations is not a.annotations
                or known[0].generator_url != a.generator_url
            ):
                # The row is [labels, annotations, starts_at, ends_at, generator_url].
                head = json.dumps([a.labels, a.annotations])[:-1]
                known = a, head, json.dumps(a.generator_url)
            now[fp] = a, known[1], known[2]
            out.append(f"{known[1]}, {a.starts_at}, {a.ends_at}, {known[2]}]")
        self._texts = now
        return out

    def _load(self) -> None:
        if not self.path.exists():
            return
        records = read_records(self.path.read_bytes()).records
        if not records:
            return
        state = json.loads(records[-1].payload)
        for x in state["alerts"]:
            a = _alert_from_json(x)
            self.alerts[a.fingerprint] = a
        routes: Mapping[str, Route] = {r.key: r for r in self.route.walk()}
        orphans: list[tuple[int, NotifyAlert]] = []
        for key, route_key, labels, next_flush, flushed, fps in state["groups"]:
            members = {fp: self.alerts[fp] for fp in fps if fp in self.alerts}
            route = routes.get(route_key)
            if route is None:
                orphans.extend((next_flush, a) for a in members.values())
                continue
            group = AggrGroup(key, route, tuple(map(tuple, labels)), next_flush, members, flushed)
            self.groups[key] = group
        # Groups of routes that no longer exist: their alerts take the current routes.
        for when, a in orphans:
            for route in self.route.match(dict(a.labels)):
                if self._grouped(route.receiver):
                    self._insert(route, a, when)


def _alert_from_json(x: list[object]) -> NotifyAlert:
    lb, an, s, e, url = x
    assert isinstance(lb, list) and isinstance(an, list)
    return NotifyAlert(
        tuple((str(k), str(v)) for k, v in lb),
        tuple((str(k), str(v)) for k, v in an),
        int(s),  # type: ignore[call-overload]
        int(e),  # type: ignore[call-overload]
        str(url),
    )
