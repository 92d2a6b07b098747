"""Pure decisions of one reconcile: replicas and container requests, with conditions.

Nothing here talks to the API or reads a clock: the controller gathers the workload, the
load and the forecast, and acts on what these functions return.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoscaler.controller.vertical import ContainerPlan
from autoscaler.controller.workload import WorkloadView
from autoscaler.policy.horizontal import (
    HorizontalDecision,
    HorizontalReason,
    LoadSignal,
    ReplicaState,
    decide_replicas,
)
from autoscaler.policy.joint import PodSizing, size_scaled_resource
from autoscaler.policy.settings import HorizontalSettings, PolicySettings
from autoscaler.policy.vertical import VerticalDecision, VerticalReason
from autoscaler.resource.model import HorizontalSpec, MetricType

__all__ = [
    "LIMITING_REASONS",
    "ConditionValue",
    "HorizontalPlan",
    "camel",
    "capacity_per_replica",
    "horizontal_settings",
    "plan_replicas",
    "scaled_limits",
    "share_scaled_resource",
]

LIMITING_REASONS = frozenset(
    {
        HorizontalReason.MAX_REPLICAS,
        HorizontalReason.MIN_REPLICAS,
        HorizontalReason.STEP_UP_LIMIT,
        HorizontalReason.STEP_DOWN_LIMIT,
    }
)


@dataclass(frozen=True)
class ConditionValue:
    """A condition's status, reason and message, before its transition time is known."""

    status: str
    reason: str
    message: str


def horizontal_settings(spec: HorizontalSpec, defaults: HorizontalSettings) -> HorizontalSettings:
    """The policy settings of one autoscaler: its spec over the service's defaults."""
    metric = spec.metric
    utilisation = 1.0 if metric.type is MetricType.QUERY else metric.target_utilization / 100
    return defaults.model_copy(
        update={
            "min_replicas": spec.min_replicas,
            "max_replicas": spec.max_replicas,
            "target_utilisation": utilisation,
            "scale_down_stabilisation_seconds": float(spec.scale_down_stabilization_seconds),
            "max_step_up": spec.max_step_up,
            "max_step_down": spec.max_step_down,
        }
    )


def capacity_per_replica(spec: HorizontalSpec, view: WorkloadView) -> float | None:
    """Load one replica serves at 100 % of its target; None when requests are missing."""
    metric = spec.metric
    if metric.type is MetricType.QUERY:
        return metric.target_per_replica
    resource = "memory" if metric.type is MetricType.MEMORY else "cpu"
    return view.request_per_pod(resource)


@dataclass(frozen=True)
class HorizontalPlan:
    """The replica decision and the conditions it implies."""

    decision: HorizontalDecision
    able: ConditionValue
    limited: ConditionValue
    message: str
    need: float | None  # the load planned for; None when the count is held on missing data


def plan_replicas(
    spec: HorizontalSpec,
    view: WorkloadView,
    signal: LoadSignal,
    state: ReplicaState,
    settings: HorizontalSettings,
    now: float,
) -> HorizontalPlan | ConditionValue:
    """The replica decision, or why none can be made (an ``AbleToScale=False`` value)."""
    capacity = capacity_per_replica(spec, view)
    if capacity is None or capacity <= 0:
        resource = "memory" if spec.metric.type is MetricType.MEMORY else "cpu"
        return ConditionValue(
            "False",
            "MissingRequests",
            f"pods of {view.kind}/{view.name} have no {resource} request; "
            f"set one or use a Query metric",
        )
    state = ReplicaState(view.replicas, capacity, state.recommendations)
    decision = decide_replicas(signal, state, settings, now)
    per_replica = capacity * settings.target_utilisation
    need = max(signal.load or 0.0, signal.forecast_peak or 0.0)
    message = (
        f"{decision.reason.value}: load {_fmt(signal.load)}, forecast {_fmt(signal.forecast_peak)}"
        f", {_fmt(per_replica)} per replica -> {decision.recommended} recommended, "
        f"{decision.replicas} set"
    )
    if decision.reason in (HorizontalReason.NO_DATA, HorizontalReason.STALE_DATA):
        able = ConditionValue("True", "FailStatic", "no fresh load: holding the replica count")
    else:
        able = ConditionValue("True", "ReadyForNewScale", "the target can be scaled")
    if decision.reason in LIMITING_REASONS:
        limited = ConditionValue(
            "True",
            camel(decision.reason.value),
            f"wanted {math.ceil(need / per_replica - 1e-9) if per_replica > 0 else '?'} "
            f"replicas, limited to {decision.replicas} ({decision.reason.value})",
        )
    else:
        limited = ConditionValue("False", "DesiredWithinRange", "the desired count is in range")
    fresh = decision.reason not in (HorizontalReason.NO_DATA, HorizontalReason.STALE_DATA)
    return HorizontalPlan(decision, able, limited, message, need if fresh else None)


def scaled_resource(spec: HorizontalSpec) -> str | None:
    """The resource whose request the horizontal metric divides by (None for a Query)."""
    if spec.metric.type is MetricType.QUERY:
        return None
    return "memory" if spec.metric.type is MetricType.MEMORY else "cpu"


def share_scaled_resource(
    plans: list[ContainerPlan],
    view: WorkloadView,
    spec: HorizontalSpec | None,
    horizontal: HorizontalPlan | None,
    policy: PolicySettings,
) -> list[ContainerPlan]:
    """The vertical plans with the scaled resource decided jointly with the replica count.

    The vertical policy's own decision for the resource the horizontal metric divides by is
    replaced by :func:`~autoscaler.policy.joint.size_scaled_resource`'s, spread over the
    controlled containers in proportion to their requests; an OOM bump is kept as it is.
    Without a horizontal side, or with a Query metric, the plans are returned unchanged.
    """
    resource = scaled_resource(spec) if spec is not None else None
    owned = [p for p in plans if resource is not None and resource in p.decisions]
    if resource is None or spec is None or not owned:
        return plans
    pod_request = view.request_per_pod(resource) or 0.0
    current = {p.container: view.container_request(p.container, resource) for p in owned}
    controlled = sum(current.values())
    if horizontal is None or controlled <= 0:
        sizing = PodSizing(pod_request, VerticalReason.NO_DATA)
    else:
        sizing = size_scaled_resource(
            horizontal.need,
            horizontal.decision,
            pod_request,
            horizontal_settings(spec, policy.horizontal),
            policy.vertical.hysteresis,
        )
    # Containers the policy does not control keep their share of the pod's request.
    factor = max(0.0, sizing.pod_request - (pod_request - controlled)) / controlled
    out = []
    for plan in plans:
        decision = plan.decisions.get(resource) if plan in owned else None
        if decision is None or decision.reason is VerticalReason.OOM:
            out.append(plan)
            continue
        now = current[plan.container]
        request = now * factor if controlled > 0 else now
        joint = VerticalDecision(
            request,
            decision.limit * request / decision.request
            if decision.limit is not None and decision.request > 0
            else None,
            sizing.reason,
            request,
            request,
            request,
            request != now,
        )
        out.append(ContainerPlan(plan.container, {**plan.decisions, resource: joint}))
    return out


def scaled_limits(
    requests: dict[str, float],
    limits: dict[str, float],
    new_requests: dict[str, float],
    limit_ratio: float | None,
) -> dict[str, float]:
    """Limits that go with ``new_requests``: the policy's ratio, else the old proportion.

    A request raised past its limit would be invalid, and a memory limit left where it was
    would OOM-kill at the same place: limits move with requests, as the VPA does it.
    """
    out = {}
    for resource, request in new_requests.items():
        if limit_ratio is not None:
            out[resource] = request * limit_ratio
        elif resource in limits and requests.get(resource, 0.0) > 0:
            out[resource] = limits[resource] * request / requests[resource]
    return out


def camel(snake: str) -> str:
    """``max_replicas`` as a condition reason: ``MaxReplicas``."""
    return "".join(part.capitalize() for part in snake.split("_"))


def _fmt(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:.3g}"
