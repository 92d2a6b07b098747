"""The alert engine's metrics, computed at scrape time from live state.

The same numbers are appended to the store each round (:func:`self_samples`), so that the
built-in rules can alert on failing notifications.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from alerts.notify.delivery import OUTCOMES
from alerts.notify.outbox import Outbox
from alerts.notify.silences import Silences
from alerts.notify.targets import receiver_of
from alerts.rules.group import GroupState
from alerts.rules.state import AlertState


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


def self_samples(
    counts: Mapping[tuple[str, str], int], outbox: Outbox, receivers: Sequence[str]
) -> list[tuple[dict[str, str], float]]:
    """Notification counters and outbox sizes as store samples."""
    out: list[tuple[dict[str, str], float]] = []
    for r in receivers:
        for outcome in OUTCOMES:
            labels = {
                "__name__": "foresight_notifications_total",
                "receiver": r,
                "outcome": outcome,
            }
            out.append((labels, float(counts.get((r, outcome), 0))))
    pending, _ = outbox_sizes(outbox, receivers)
    for r, n in pending.items():
        out.append(({"__name__": "foresight_notification_outbox_size", "receiver": r}, float(n)))
    return out


class AlertingCollector(Collector):
    """A prometheus-client collector over the alert engine."""

    def __init__(self, sources: Callable[[], Sources]) -> None:
        self._sources = sources

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        s = self._sources()
        alerts = GaugeMetricFamily(
            "foresight_alerts",
            "Pending and firing alerts.",
            labels=["alertname", "severity", "state"],
        )
        for (name, severity, state), n in sorted(alert_counts(s.groups).items()):
            alerts.add_metric([name, severity, state], n)
        yield alerts
        sent = CounterMetricFamily(
            "foresight_notifications",
            "Notification attempts by outcome: sent, failed (retried), rejected, dead_lettered.",
            labels=["receiver", "outcome"],
        )
        for r in s.receivers:
            for outcome in OUTCOMES:
                sent.add_metric([r, outcome], s.counts.get((r, outcome), 0))
        yield sent
        pending, dead = outbox_sizes(s.outbox, s.receivers)
        size = GaugeMetricFamily(
            "foresight_notification_outbox_size",
            "Notifications queued and not yet delivered.",
            labels=["receiver"],
        )
        dead_family = GaugeMetricFamily(
            "foresight_notification_dead_letters",
            "Notifications given up on (see `foresight alerts outbox`).",
            labels=["receiver"],
        )
        for r, n in sorted(pending.items()):
            size.add_metric([r], n)
        for r, n in sorted(dead.items()):
            dead_family.add_metric([r], n)
        yield size
        yield dead_family
        last = GaugeMetricFamily(
            "foresight_rule_group_last_evaluation_seconds",
            "When the group was last evaluated, unix seconds.",
            labels=["rule_group"],
        )
        duration = GaugeMetricFamily(
            "foresight_rule_group_last_duration_seconds",
            "How long the group's last evaluation took, seconds.",
            labels=["rule_group"],
        )
        failures = CounterMetricFamily(
            "foresight_rule_group_evaluation_failures",
            "Rule evaluations that failed.",
            labels=["rule_group"],
        )
        for g in s.groups:
            last.add_metric([g.spec.key], g.last_evaluation_ms / 1000)
            duration.add_metric([g.spec.key], g.last_duration_s)
            failures.add_metric([g.spec.key], g.failures)
        yield last
        yield duration
        yield failures
        reload = GaugeMetricFamily(
            "foresight_rule_config_last_reload_successful",
            "1 if the last load of the rule files succeeded.",
        )
        reload.add_metric([], 1.0 if s.reload_ok else 0.0)
        yield reload
        silences = GaugeMetricFamily("foresight_silences", "Silences by state.", labels=["state"])
        states: Counter[str] = Counter(x.state(s.now_ms) for x in s.silences.query(s.now_ms))
        for state in ("active", "pending", "expired"):
            silences.add_metric([state], states[state])
        yield silences
