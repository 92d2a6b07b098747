"""The alert engine's metrics, as metric families computed from live state.

``/metrics`` shows :func:`alert_families` at scrape time; the notification families
(:func:`notification_families`) are also written to the store each round, the same way, so
that the built-in rules can alert on failing notifications.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from alerts.notify.delivery import OUTCOMES
from alerts.notify.outbox import Outbox
from alerts.notify.silences import Silences
from alerts.notify.targets import receiver_of
from alerts.rules.group import GroupState
from alerts.rules.state import AlertState
from runtime import names
from runtime.families import FamiliesCollector, Family


@dataclass
class Sources:
    """Where the numbers come from."""

    groups: Sequence[GroupState]
    counts: Mapping[tuple[str, str], int]
    outbox: Outbox
    receivers: Sequence[str]
    silences: Silences
    reload_ok: bool
    now_ms: int


def alert_counts(groups: Sequence[GroupState]) -> Counter[tuple[str, str, str]]:
    """Pending and firing alerts by (alertname, severity, state)."""
    out: Counter[tuple[str, str, str]] = Counter()
    for g in groups:
        for rule, alerts in zip(g.spec.rules, g.alerts, strict=True):
            for a in alerts.values():
                if a.state is AlertState.INACTIVE:
                    continue
                out[(rule.name, dict(a.labels).get("severity", ""), a.state.value)] += 1
    return out


def outbox_sizes(outbox: Outbox, receivers: Sequence[str]) -> tuple[Counter[str], Counter[str]]:
    """Pending and dead-lettered notifications by receiver (every receiver listed)."""
    pending: Counter[str] = Counter(dict.fromkeys(receivers, 0))
    dead: Counter[str] = Counter(dict.fromkeys(receivers, 0))
    for e in outbox.pending.values():
        pending[receiver_of(e.receiver)] += 1
    for e in outbox.dead.values():
        dead[receiver_of(e.receiver)] += 1
    return pending, dead


def notification_families(
    counts: Mapping[tuple[str, str], int], outbox: Outbox, receivers: Sequence[str]
) -> list[Family]:
    """Notification attempts by outcome, and the outbox's pending and dead-lettered sizes, for
    every receiver."""
    sent = Family(
        names.NOTIFICATIONS,
        "counter",
        "Notification attempts by outcome: sent, failed (retried), rejected, dead_lettered.",
    )
    for r in receivers:
        for outcome in OUTCOMES:
            sent.add(counts.get((r, outcome), 0), receiver=r, outcome=outcome)
    pending, dead = outbox_sizes(outbox, receivers)
    size = Family(
        names.NOTIFICATION_OUTBOX_SIZE, "gauge", "Notifications queued and not yet delivered."
    )
    dead_letters = Family(
        names.NOTIFICATION_DEAD_LETTERS,
        "gauge",
        "Notifications given up on (see `foresight alerts outbox`).",
    )
    for r, n in sorted(pending.items()):
        size.add(n, receiver=r)
    for r, n in sorted(dead.items()):
        dead_letters.add(n, receiver=r)
    return [sent, size, dead_letters]


def alert_families(s: Sources) -> list[Family]:
    """Every metric of the alert engine: alerts, notifications, rule groups, silences."""
    alerts = Family(names.ALERTS, "gauge", "Pending and firing alerts.")
    for (name, severity, state), n in sorted(alert_counts(s.groups).items()):
        alerts.add(n, alertname=name, severity=severity, state=state)
    last = Family(
        names.RULE_GROUP_LAST_EVALUATION,
        "gauge",
        "When the group was last evaluated, unix seconds.",
    )
    duration = Family(
        names.RULE_GROUP_LAST_DURATION,
        "gauge",
        "How long the group's last evaluation took, seconds.",
    )
    failures = Family(names.RULE_GROUP_FAILURES, "counter", "Rule evaluations that failed.")
    for g in s.groups:
        last.add(g.last_evaluation_ms / 1000, rule_group=g.spec.key)
        duration.add(g.last_duration_s, rule_group=g.spec.key)
        failures.add(g.failures, rule_group=g.spec.key)
    reload = Family(
        names.RULE_CONFIG_RELOAD_OK, "gauge", "1 if the last load of the rule files succeeded."
    )
    reload.add(1.0 if s.reload_ok else 0.0)
    silences = Family(names.SILENCES, "gauge", "Silences by state.")
    states: Counter[str] = Counter(x.state(s.now_ms) for x in s.silences.query(s.now_ms))
    for state in ("active", "pending", "expired"):
        silences.add(states[state], state=state)
    return [
        alerts,
        *notification_families(s.counts, s.outbox, s.receivers),
        last,
        duration,
        failures,
        reload,
        silences,
    ]


class AlertingCollector(FamiliesCollector):
    """The alert engine's families for a prometheus-client registry, computed at each scrape."""

    def __init__(self, sources: Callable[[], Sources]) -> None:
        super().__init__(lambda: alert_families(sources()))
