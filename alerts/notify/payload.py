"""The Alertmanager webhook payload, version 4."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alerts.notify.model import ZERO_TIME, Labels, NotifyAlert, rfc3339


def _order_key(alert: NotifyAlert) -> tuple[str, str, str]:
    lb = dict(alert.labels)
    return (lb.get("job", ""), lb.get("instance", ""), alert.fingerprint)


def common(items: Sequence[Labels]) -> dict[str, str]:
    """Pairs present, with the same value, in every one of ``items``."""
    if not items:
        return {}
    # A pair common to all is in the intersection of their pairs (names are unique in a
    # label set), in the order of the first.
    shared = set(items[0]).intersection(*items[1:])
    return {k: v for k, v in items[0] if (k, v) in shared}


def group_key(route_matchers: str, group_labels: Labels) -> str:
    """``{route matchers}:{group labels}``, as Alertmanager spells it."""
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels))
    return f"{route_matchers}:{{{inner}}}"


def build_payload(
    receiver: str,
    alerts: Sequence[NotifyAlert],
    group_labels: Labels,
    key: str,
    external_url: str,
    now_ms: int,
    max_alerts: int = 0,
) -> dict[str, Any]:
    """The JSON object POSTed to a webhook receiver: exactly the fields Alertmanager's
    webhook sends, nothing of foresight's own."""
    firing = sorted((a for a in alerts if not a.resolved(now_ms)), key=_order_key)
    resolved = sorted((a for a in alerts if a.resolved(now_ms)), key=_order_key)
    ordered = firing + resolved
    shown = ordered[:max_alerts] if max_alerts > 0 else ordered
    return {
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "alerts": [
            {
                "status": "resolved" if a.resolved(now_ms) else "firing",
                "labels": dict(sorted(a.labels)),
                "annotations": dict(sorted(a.annotations)),
                "startsAt": rfc3339(a.starts_at),
                "endsAt": rfc3339(a.ends_at) if a.resolved(now_ms) else ZERO_TIME,
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            }
            for a in shown
        ],
        "groupLabels": dict(sorted(group_labels)),
        "commonLabels": common([a.labels for a in ordered]),
        "commonAnnotations": common([a.annotations for a in ordered]),
        "externalURL": external_url,
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": len(ordered) - len(shown),
    }


def postable_alerts(alerts: Sequence[NotifyAlert]) -> list[dict[str, Any]]:
    """Alerts as Alertmanager's ``POST /api/v2/alerts`` takes them."""
    out = []
    for a in alerts:
        item: dict[str, Any] = {
            "labels": dict(sorted(a.labels)),
            "annotations": dict(sorted(a.annotations)),
            "startsAt": rfc3339(a.starts_at),
            "generatorURL": a.generator_url,
        }
        if a.ends_at > 0:
            item["endsAt"] = rfc3339(a.ends_at)
        out.append(item)
    return out
