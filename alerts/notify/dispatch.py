"""Grouping alerts into notifications, Alertmanager-style, with a persisted notification log.

Alerts are grouped by ``group_by`` labels (``...``: all). A new group is flushed after
``group_wait``, then every ``group_interval``; a flush notifies when a firing alert is new,
when all alerts resolved, when a resolved one was not yet notified, or when
``repeat_interval`` passed. What each group last notified is persisted with the alerts, so
a restart neither repeats a firing notification nor forgets a resolved one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from alerts.notify.model import Labels, NotifyAlert
from alerts.notify.outbox import Outbox
from alerts.notify.payload import build_payload, group_key
from alerts.settings import NotifySettings
from collectors.store.records import frame, read_records, write_atomically

_SNAPSHOT = 1
_FILE = "notify.state"


@dataclass
class _Group:
    labels: Labels
    created_ms: int
    next_flush_ms: int
    firing: list[str] = field(default_factory=list)  # fingerprints last notified as firing
    resolved: list[str] = field(default_factory=list)
    notified_ms: int = 0


class Dispatcher:
    """Alerts in, notifications into the outbox."""

    def __init__(
        self, settings: NotifySettings, outbox: Outbox, state_dir: Path, external_url: str = ""
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.external_url = external_url
        self.path = state_dir / _FILE
        self.alerts: dict[str, NotifyAlert] = {}
        self.groups: dict[Labels, _Group] = {}
        self._load()

    def _group_labels(self, alert: NotifyAlert) -> Labels:
        if "..." in self.settings.group_by:
            return alert.labels
        wanted = set(self.settings.group_by)
        return tuple(p for p in alert.labels if p[0] in wanted)

    def put(self, alerts: Iterable[NotifyAlert], now_ms: int) -> None:
        """Take new or updated alerts (as Alertmanager's API does)."""
        for incoming in alerts:
            a = incoming
            old = self.alerts.get(a.fingerprint)
            if old is not None and not old.resolved(now_ms):
                a = NotifyAlert(a.labels, a.annotations, old.starts_at, a.ends_at, a.generator_url)
            self.alerts[a.fingerprint] = a
            key = self._group_labels(a)
            if key not in self.groups:
                wait = round(self.settings.group_wait_seconds * 1000)
                self.groups[key] = _Group(key, now_ms, now_ms + wait)

    def flush(self, now_ms: int) -> int:
        """Flush every due group; returns how many notifications were queued."""
        queued = 0
        interval = round(self.settings.group_interval_seconds * 1000)
        repeat = round(self.settings.repeat_interval_seconds * 1000)
        for key, group in list(self.groups.items()):
            if group.next_flush_ms > now_ms:
                continue
            group.next_flush_ms = now_ms + interval
            members = [a for a in self.alerts.values() if self._group_labels(a) == key]
            firing = sorted(a.fingerprint for a in members if not a.resolved(now_ms))
            resolved = sorted(a.fingerprint for a in members if a.resolved(now_ms))
            if self._needs_update(group, set(firing), set(resolved), now_ms, repeat):
                gk = group_key("{}", key)
                for receiver in self.settings.receivers:
                    body = build_payload(
                        receiver.name,
                        members,
                        key,
                        gk,
                        self.external_url,
                        now_ms,
                        receiver.max_alerts,
                    )
                    self.outbox.enqueue(receiver.name, json.dumps(body).encode(), now_ms, gk)
                    queued += 1
                group.firing, group.resolved, group.notified_ms = firing, resolved, now_ms
            for fp in resolved:
                if fp in group.resolved or group.notified_ms == 0:
                    self.alerts.pop(fp, None)
            if not firing and not any(self._group_labels(a) == key for a in self.alerts.values()):
                del self.groups[key]
        self._save()
        return queued

    @staticmethod
    def _needs_update(
        group: _Group, firing: set[str], resolved: set[str], now_ms: int, repeat: int
    ) -> bool:
        if group.notified_ms == 0:
            return bool(firing)
        if not firing <= set(group.firing):
            return True
        if not firing:
            return bool(group.firing)
        if not resolved <= set(group.resolved):
            return True
        return group.notified_ms + repeat <= now_ms

    def _save(self) -> None:
        state = {
            "alerts": [
                [
                    list(map(list, a.labels)),
                    list(map(list, a.annotations)),
                    a.starts_at,
                    a.ends_at,
                    a.generator_url,
                ]
                for a in self.alerts.values()
            ],
            "groups": [
                [
                    list(map(list, g.labels)),
                    g.created_ms,
                    g.next_flush_ms,
                    g.firing,
                    g.resolved,
                    g.notified_ms,
                ]
                for g in self.groups.values()
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, frame(_SNAPSHOT, json.dumps(state).encode()))

    def _load(self) -> None:
        if not self.path.exists():
            return
        records = read_records(self.path.read_bytes()).records
        if not records:
            return
        state = json.loads(records[-1].payload)
        for lb, an, s, e, url in state["alerts"]:
            a = NotifyAlert(tuple(map(tuple, lb)), tuple(map(tuple, an)), s, e, url)
            self.alerts[a.fingerprint] = a
        for lb, created, nxt, firing, resolved, notified in state["groups"]:
            key = tuple(map(tuple, lb))
            self.groups[key] = _Group(key, created, nxt, firing, resolved, notified)
