"""Status conditions with transition times, and the status object the controller writes.

Status is built as :class:`~autoscaler.resource.model.PredictiveAutoscalerStatus`, the model
the CRD's status schema is generated from, and turned into JSON in one place
(:meth:`~autoscaler.resource.model.PredictiveAutoscalerStatus.to_api`), so what is written
cannot drift from what the schema allows.
"""

from __future__ import annotations

from autoscaler.controller.decide import ConditionValue
from autoscaler.controller.kube_actions import format_resource
from autoscaler.controller.vertical import ContainerPlan
from autoscaler.resource.model import Condition, ContainerRecommendation, ResourceBounds
from runtime.clock import to_datetime

__all__ = ["CONDITION_TYPES", "Conditions", "recommendation", "rfc3339"]

CONDITION_TYPES = (
    "ForecastReady",
    "AbleToScale",
    "ScalingLimited",
    "ConflictingAutoscaler",
    "AbleToResize",
    # Set by autoscaler.backfill.gate, which merges it into the status the controller writes.
    "HistoryBackfilled",
)


def rfc3339(ts: float) -> str:
    """A unix time as Kubernetes writes times."""
    return to_datetime(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


class Conditions:
    """The current conditions; a transition time changes only when the status does."""

    def __init__(self) -> None:
        self._by_type: dict[str, Condition] = {}

    def set(self, kind: str, value: ConditionValue, now: float) -> None:
        old = self._by_type.get(kind)
        since = old.last_transition_time if old and old.status == value.status else None
        self._by_type[kind] = Condition(
            type=kind,
            status=value.status,
            reason=value.reason,
            message=value.message,
            last_transition_time=since or rfc3339(now),
        )

    def status_of(self, kind: str) -> str | None:
        item = self._by_type.get(kind)
        return None if item is None else item.status

    def as_list(self) -> list[Condition]:
        return [self._by_type[k] for k in CONDITION_TYPES if k in self._by_type]

    def digest(self) -> tuple[tuple[str, str, str], ...]:
        """What changes in substance (not messages with live numbers)."""
        return tuple((c.type, c.status, c.reason) for c in self.as_list())


def _bounds(values: dict[str, float]) -> ResourceBounds:
    return ResourceBounds.model_validate({r: format_resource(r, v) for r, v in values.items()})


def recommendation(plan: ContainerPlan) -> ContainerRecommendation:
    """The status entry of one container's vertical decision."""
    decisions = plan.decisions
    return ContainerRecommendation(
        container_name=plan.container,
        target=_bounds({r: d.request for r, d in decisions.items()}),
        lower_bound=_bounds({r: d.lower for r, d in decisions.items()}),
        upper_bound=_bounds({r: d.upper for r, d in decisions.items()}),
        reason=",".join(sorted({d.reason.value for d in decisions.values()})),
    )
