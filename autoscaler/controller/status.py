"""Status conditions with transition times, and the status object the controller writes."""

from __future__ import annotations

from typing import Any

from autoscaler.controller.decide import ConditionValue
from runtime.clock import to_datetime

__all__ = ["CONDITION_TYPES", "Conditions", "rfc3339"]

CONDITION_TYPES = ("ForecastReady", "AbleToScale", "ScalingLimited", "ConflictingAutoscaler")


def rfc3339(ts: float) -> str:
    """A unix time as Kubernetes writes times."""
    return to_datetime(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


class Conditions:
    """The current conditions; a transition time changes only when the status does."""

    def __init__(self) -> None:
        self._by_type: dict[str, dict[str, Any]] = {}

    def set(self, kind: str, value: ConditionValue, now: float) -> None:
        old = self._by_type.get(kind)
        since = old["lastTransitionTime"] if old and old["status"] == value.status else None
        self._by_type[kind] = {
            "type": kind,
            "status": value.status,
            "reason": value.reason,
            "message": value.message,
            "lastTransitionTime": since or rfc3339(now),
        }

    def status_of(self, kind: str) -> str | None:
        item = self._by_type.get(kind)
        return None if item is None else str(item["status"])

    def as_list(self) -> list[dict[str, Any]]:
        return [self._by_type[k] for k in CONDITION_TYPES if k in self._by_type]

    def digest(self) -> tuple[tuple[str, str, str], ...]:
        """What changes in substance (not messages with live numbers)."""
        return tuple((c["type"], c["status"], c["reason"]) for c in self.as_list())
