"""Alerts: what is firing, and do notifications reach their receivers?"""

from __future__ import annotations

import grafanalib.core as g

from dashboards.core import (
    ANY_IS_BAD,
    ANY_IS_WARNING,
    Layout,
    Query,
    dashboard,
    override,
    query_variable,
    stat,
    table,
    timeseries,
    value_map,
)
from dashboards.queries import CLUSTERS, label_values, sel
from runtime import names

UID = "foresight-alerts"
SEVERITY = 'severity=~"$severity"'
RECEIVER = 'receiver=~"$receiver"'
PER_MINUTE = "suffix: /min"


def _fixed(color: str) -> dict[str, str]:
    return {"mode": "fixed", "fixedColor": color}


def _alerts(layout: Layout) -> None:
    layout.row("Alerts")
    for state, thresholds in (("firing", ANY_IS_BAD), ("pending", ANY_IS_WARNING)):
        layout.add(
            stat(
                f"{state.capitalize()} by severity",
                [
                    Query(
                        f"sum by (severity) ({sel(names.ALERTS, SEVERITY, state=state)})",
                        "{{severity}}",
                    )
                ],
                "none",
                f"Alerts {state} now, by severity"
                + (
                    " (their condition holds, `for` has not elapsed yet)."
                    if state == "pending"
                    else "."
                ),
                thresholds,
            ),
            6,
            5,
        )
    notifications = sel(names.NOTIFICATIONS, RECEIVER)
    for outcome, description in (
        ("failed", "Delivery attempts that failed (and will be retried) over the time range."),
        (
            "dead_lettered",
            "Notifications given up on after the dead-letter timeout, over the "
            "time range: those alerts never reached their receiver.",
        ),
    ):
        chosen = sel(names.NOTIFICATIONS, RECEIVER, outcome=outcome)
        layout.add(
            stat(
                f"Notifications {outcome.replace('_', '-')}",
                [Query(f"round(sum(increase({chosen}[$__range]))) or vector(0)")],
                "none",
                description,
                ANY_IS_BAD if outcome == "dead_lettered" else ANY_IS_WARNING,
            ),
            6,
            5,
        )
    del notifications
    alerts = sel(names.ALERTS, SEVERITY)
    layout.add(
        timeseries(
            "Alerts by severity and state",
            [Query(f"sum by (severity, state) ({alerts})", "{{severity}} {{state}}")],
            "none",
            "Firing and pending alerts over time.",
            stack=True,
            fill=40,
            overrides=[
                override("critical firing", color=_fixed("red")),
                override("warning firing", color=_fixed("orange")),
            ],
        ),
        12,
        8,
    )
    layout.add(
        table(
            "Alerts now",
            [Query(f"sum by (alertname, severity, state) ({alerts})")],
            "Each alert rule with firing or pending alerts, and how many.",
            columns={
                "alertname": "Alert",
                "severity": "Severity",
                "state": "State",
                "Value": "Alerts",
            },
            overrides=[
                override(
                    "State",
                    mappings=value_map(
                        {"firing": ("firing", "red"), "pending": ("pending", "orange")}
                    ),
                    custom__cellOptions={"type": "color-text"},
                )
            ],
            sort_by="Alerts",
        ),
        12,
        8,
    )


def _delivery(layout: Layout) -> None:
    layout.row("Notification delivery")
    notifications = sel(names.NOTIFICATIONS, RECEIVER)
    layout.add(
        timeseries(
            "Notifications by receiver and outcome",
            [
                Query(
                    f"sum by (receiver, outcome) (rate({notifications}[$__rate_interval])) * 60",
                    "{{receiver}} {{outcome}}",
                )
            ],
            PER_MINUTE,
            "Webhook deliveries per minute: sent, failed (retried with backoff), rejected by "
            "the receiver (4xx, not retried), dead-lettered.",
            fill=20,
            overrides=[
                override(".* sent", regex=True, color=_fixed("green")),
                override(".* failed", regex=True, color=_fixed("orange")),
                override(".* (rejected|dead_lettered)", regex=True, color=_fixed("red")),
            ],
        ),
        12,
        8,
    )
    bad = sel(names.NOTIFICATIONS, RECEIVER, outcome="~failed|rejected|dead_lettered")
    layout.add(
        timeseries(
            "Failure ratio by receiver",
            [
                Query(
                    f"sum by (receiver) (rate({bad}[$__rate_interval])) "
                    f"/ sum by (receiver) (rate({notifications}[$__rate_interval]))",
                    "{{receiver}}",
                )
            ],
            "percentunit",
            "Share of delivery attempts that did not succeed. A receiver stuck near 100 % is "
            "down or misconfigured.",
            thresholds=(("transparent", None), ("orange", 0.1), ("red", 0.5)),
            threshold_style="dashed",
            fill=0,
            maximum=1,
        ),
        12,
        8,
    )
    outbox = sel(names.NOTIFICATION_OUTBOX_SIZE, RECEIVER)
    layout.add(
        timeseries(
            "Outbox: notifications waiting",
            [Query(f"sum by (receiver) ({outbox})", "{{receiver}}")],
            "none",
            "Notifications persisted and not yet delivered. Growing: the receiver is slower "
            "than alerts arrive, or unreachable.",
            thresholds=(("transparent", None), ("orange", 100)),
            threshold_style="dashed",
        ),
        24,
        8,
    )


def build() -> g.Dashboard:
    """The alerts dashboard."""
    layout = Layout()
    _alerts(layout)
    _delivery(layout)
    return dashboard(
        UID,
        "foresight / Alerts",
        "What is firing, and whether notifications reach their receivers.",
        [
            query_variable("cluster", "Cluster", CLUSTERS),
            query_variable(
                "severity",
                "Severity",
                label_values(sel(names.ALERTS), "severity"),
            ),
            query_variable(
                "receiver",
                "Receiver",
                label_values(sel(names.NOTIFICATIONS), "receiver"),
            ),
        ],
        layout,
    )
