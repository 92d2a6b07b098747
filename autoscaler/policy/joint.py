"""Horizontal and vertical scaling of one workload as one decision, without a fight.

**The fight.** A horizontal metric of CPU (or memory) utilisation divides the workload's load
by the per-pod request: capacity per replica = request × target. A vertical policy that sizes
that same request from per-pod usage closes a loop: a smaller request raises utilisation, the
horizontal side adds replicas, usage per pod falls, and the vertical side shrinks the request
again. Any count n is a fixed point of "request = usage per pod / target", so noise, margins
and rounding walk the pair to the maximum replica count with starved pods.

**The rule.** The resource the horizontal metric divides by (cpu for a CPU metric, memory for
a Memory metric: the *scaled resource*) belongs to the horizontal side. Between minReplicas
and maxReplicas the vertical side leaves its request alone: there, the count answers every
change of load, and resizing would only move the count the other way. The vertical side moves
the scaled resource only where the count cannot move:

- at maxReplicas, when the need (the larger of load and forecast peak, as the horizontal side
  uses) needs more than the pods hold: each pod grows to need / (maxReplicas × target);
- at minReplicas, when the pods hold more than the need by more than the hysteresis: each pod
  shrinks to need × (1 + scale-down tolerance) / (minReplicas × target).

Both are bounded by the container policies' minAllowed/maxAllowed by the caller. Every other
resource (memory under a CPU metric, everything under a Query metric) is sized from usage as
the vertical policy always does: the count does not depend on it, so there is no loop. An OOM
kill still raises memory at once, whatever the metric: safety comes before the division of
labour.

**Why it converges.** Between the bounds the request is constant, so the count is the
horizontal policy's alone (monotone in load, stabilised downwards). At a bound, the resize
sets capacity × bound = need (up to the tolerance), so on the next cycle the horizontal side
asks for exactly that bound again and the vertical side's target is within its hysteresis:
one resize per excursion to a bound, not one per cycle. Growth happens only at maxReplicas and
shrinking only at minReplicas, and a grown pod leaves maxReplicas only when the need falls,
where it shrinks back only at minReplicas: the pair cannot ratchet in one direction. In one
cycle the two sides never move the same resource: when the scaled resource is resized the
count is held at the bound that triggered it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoscaler.policy.horizontal import HorizontalDecision
from autoscaler.policy.settings import HorizontalSettings
from autoscaler.policy.vertical import VerticalReason

__all__ = ["PodSizing", "size_scaled_resource"]


@dataclass(frozen=True)
class PodSizing:
    """The per-pod request of the scaled resource, and why."""

    pod_request: float
    reason: VerticalReason

    def factor(self, current: float) -> float:
        """What the current per-pod request is multiplied by (1 when unchanged)."""
        return self.pod_request / current if current > 0 else 1.0


def size_scaled_resource(
    need: float | None,
    horizontal: HorizontalDecision,
    pod_request: float,
    settings: HorizontalSettings,
    hysteresis: float,
) -> PodSizing:
    """The per-pod request of the resource the horizontal metric divides by; pure.

    ``need`` is the load the horizontal side planned for (None: no fresh data, hold), in the
    unit of ``pod_request`` × replicas; ``horizontal`` is this cycle's replica decision.
    """
    keep = PodSizing(pod_request, VerticalReason.HORIZONTAL_OWNS)
    if need is None or not math.isfinite(need) or pod_request <= 0:
        return PodSizing(pod_request, VerticalReason.NO_DATA)
    replicas = horizontal.replicas
    target = settings.target_utilisation
    fits = need / (replicas * target)  # the per-pod request that holds the need exactly
    if replicas >= settings.max_replicas and fits > pod_request * (1 + hysteresis):
        return PodSizing(fits, VerticalReason.GROW_AT_MAX)
    if replicas <= settings.min_replicas and fits < pod_request * (1 - hysteresis):
        shrunk = fits * (1 + settings.scale_down_tolerance)
        if shrunk < pod_request * (1 - hysteresis):
            return PodSizing(shrunk, VerticalReason.SHRINK_AT_MIN)
    return keep
