"""Horizontal and vertical scaling on one workload, without a fight.

The rule: vertical sizes the pod, horizontal sets the count on the resized capacity. A
per-pod request change alters the capacity per replica the horizontal policy divides by, so
the joint decision first fixes the request, then computes replicas with the capacity that
request gives. Vertical looks at usage per pod normalised to one replica's share of the
workload's load, so adding replicas does not read as a smaller need per pod and trigger a
shrink that horizontal then answers with more replicas.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.policy.horizontal import (
    HorizontalDecision,
    LoadSignal,
    ReplicaState,
    decide_replicas,
)
from autoscaler.policy.settings import HorizontalSettings
from autoscaler.policy.vertical import VerticalDecision

__all__ = ["JointDecision", "decide_joint"]


@dataclass(frozen=True)
class JointDecision:
    """The request per pod and the replica count that go together."""

    vertical: VerticalDecision
    horizontal: HorizontalDecision
    capacity_per_replica: float


def decide_joint(
    vertical: VerticalDecision,
    load_per_request_unit: float,
    signal: LoadSignal,
    state: ReplicaState,
    settings: HorizontalSettings,
    now: float,
) -> JointDecision:
    """Replicas on the capacity of the new request.

    ``load_per_request_unit`` converts a request into the load one replica serves (e.g.
    requests/s per CPU core at the target).
    """
    capacity = vertical.request * load_per_request_unit
    resized = ReplicaState(state.current, capacity, state.recommendations)
    horizontal = decide_replicas(signal, resized, settings, now)
    return JointDecision(vertical, horizontal, capacity)
