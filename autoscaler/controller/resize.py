"""Vertical actuation: a decided container size is put on the pods, in place or by template.

The controller decides (:mod:`autoscaler.controller.vertical`, :mod:`autoscaler.controller.decide`)
and hands the plans to :class:`Resizer`, which owns every write that changes requests:

* ``InPlace``: each running pod whose container differs by more than the hysteresis is resized
  through the ``pods/resize`` subresource;
* ``Recreate``: the workload's pod template is patched (a rolling restart follows), at most once
  per ``controller.recreate_min_interval_seconds``.

What must be remembered between cycles for one autoscaler lives in :class:`ResizeState`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from autoscaler.controller.decide import scaled_limits
from autoscaler.controller.kube_actions import KubeActions, format_resource, round_request
from autoscaler.controller.settings import ControllerSettings
from autoscaler.controller.status import Conditions
from autoscaler.controller.vertical import ContainerPlan
from autoscaler.controller.workload import WorkloadView
from autoscaler.policy.settings import PolicySettings
from autoscaler.resource.model import UpdateMode
from autoscaler.resource.objects import Autoscaler

__all__ = ["ResizeState", "Resizer"]

log = logging.getLogger(__name__)


@dataclass
class ResizeState:
    """What the resizer keeps per autoscaler between cycles."""

    last_recreate_at: float | None = None


class Resizer:
    """Applies vertical plans to a workload's pods; one per controller.

    ``decisions`` and ``actions_log`` are the controller's own counters and log, shared so that
    a resize is counted where a scale is.
    """

    def __init__(
        self,
        actions: KubeActions,
        settings: ControllerSettings,
        policy: PolicySettings,
        decisions: dict[tuple[str, str, str, str], int],
        actions_log: list[dict[str, Any]],
    ) -> None:
        self._actions = actions
        self._settings = settings
        self._policy = policy
        self._decisions = decisions
        self._actions_log = actions_log

    async def apply(
        self,
        parsed: Autoscaler,
        state: ResizeState,
        conditions: Conditions,
        view: WorkloadView,
        plans: list[ContainerPlan],
        mode: UpdateMode,
        now: float,
    ) -> None:
        """Put ``plans`` on the workload as ``mode`` says (``Off``: nothing); what stands in
        the way is reported in ``conditions``."""
        if mode is UpdateMode.OFF:
            return
        if mode is UpdateMode.IN_PLACE:
            await self._resize_in_place(parsed, view, plans, now)
        else:
            await self._recreate(parsed, state, view, plans, now)

    async def _resize_in_place(
        self, parsed: Autoscaler, view: WorkloadView, plans: list[ContainerPlan], now: float
    ) -> None:
        hysteresis = self._policy.vertical.hysteresis
        limit_ratio = self._policy.vertical.limit_ratio
        for plan in plans:
            for c in view.containers:
                if c.name != plan.container:
                    continue
                changes = {
                    resource: round_request(resource, d.request)
                    for resource, d in plan.decisions.items()
                    if differs(c.requests.get(resource, 0.0), d.request, hysteresis, d.reason)
                }
                if not changes:
                    continue
                limits = scaled_limits(c.requests, c.limits, changes, limit_ratio)
                await self._actions.resize_pod(parsed.namespace, c.pod, c.name, changes, limits)
                self._record_resize(parsed, c.pod, c.name, c.requests, changes, plan, now)
                await self._actions.event(
                    parsed.namespace,
                    parsed.name,
                    parsed.uid,
                    "Resized",
                    f"pod {c.pod} container {c.name}: {describe(c.requests, changes)}",
                )

    async def _recreate(
        self,
        parsed: Autoscaler,
        state: ResizeState,
        view: WorkloadView,
        plans: list[ContainerPlan],
        now: float,
    ) -> None:
        interval = self._settings.recreate_min_interval_seconds
        if state.last_recreate_at is not None and now - state.last_recreate_at < interval:
            return
        hysteresis = self._policy.vertical.hysteresis
        changes: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
        for plan in plans:
            current = next((c for c in view.containers if c.name == plan.container), None)
            requests = current.requests if current is not None else {}
            limits = current.limits if current is not None else {}
            wanted = {
                r: round_request(r, d.request)
                for r, d in plan.decisions.items()
                if differs(requests.get(r, 0.0), d.request, hysteresis, d.reason)
            }
            if wanted:
                new_limits = scaled_limits(
                    requests, limits, wanted, self._policy.vertical.limit_ratio
                )
                changes[plan.container] = (wanted, new_limits)
        if not changes:
            return
        await self._actions.patch_template(parsed.namespace, view.kind, view.name, changes)
        state.last_recreate_at = now
        summary = "; ".join(f"{name}: {describe({}, ch)}" for name, (ch, _) in changes.items())
        self._actions_log.append(
            {
                "time": now,
                "autoscaler": f"{parsed.namespace}/{parsed.name}",
                "kind": "recreate",
                "reason": "vertical",
                "message": summary,
            }
        )
        await self._actions.event(
            parsed.namespace, parsed.name, parsed.uid, "TemplateUpdated", summary
        )

    def _record_resize(
        self,
        parsed: Autoscaler,
        pod: str,
        container: str,
        before: dict[str, float],
        changes: dict[str, float],
        plan: ContainerPlan,
        now: float,
    ) -> None:
        reasons = ",".join(sorted({plan.decisions[r].reason.value for r in changes}))
        key = (parsed.namespace, parsed.name, "resize", reasons)
        self._decisions[key] = self._decisions.get(key, 0) + 1
        self._actions_log.append(
            {
                "time": now,
                "autoscaler": f"{parsed.namespace}/{parsed.name}",
                "kind": "resize",
                "pod": pod,
                "container": container,
                "reason": reasons,
                "message": describe(before, changes),
            }
        )


def differs(current: float, wanted: float, hysteresis: float, reason: Any) -> bool:
    """Whether ``wanted`` is worth a write: beyond the hysteresis, or an OOM bump."""
    if not math.isfinite(wanted) or wanted <= 0:
        return False
    if current <= 0:
        return True
    return abs(wanted - current) > hysteresis * current or str(reason) == "oom_bump"


def describe(before: dict[str, float], changes: dict[str, float]) -> str:
    """``cpu 100m -> 250m, memory - -> 512Mi``: a change as events and logs show it."""
    return ", ".join(
        f"{r} {format_resource(r, before[r]) if r in before else '-'} -> {format_resource(r, v)}"
        for r, v in sorted(changes.items())
    )
