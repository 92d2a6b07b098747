"""Vertical actuation: a decided container size is put on the pods, in place or by template.

The controller decides (:mod:`autoscaler.controller.vertical`, :mod:`autoscaler.controller.decide`)
and hands the plans to :class:`Resizer`, which owns every write that changes requests, with
Kubernetes' in-place resize semantics (KEP-1287, 1.33+) and the VPA's names for the modes:

* ``InPlace``: each running pod whose container differs by more than the hysteresis is resized
  through the ``pods/resize`` subresource. Pods are never recreated.
* ``InPlaceOrRecreate``: the same, and the pod template is patched instead (a rolling restart,
  at most once per ``controller.recreate_min_interval_seconds``) where in place cannot do it:
  the server does not serve ``pods/resize``; a pod's resize has stayed ``Infeasible`` for
  ``controller.resize_infeasible_timeout_seconds``; or a memory limit must fall on a container
  whose memory ``resizePolicy`` is not ``RestartContainer``.
* ``Recreate``: the pod template is patched, at most once per the same interval.

What the kubelet says of each pod is respected: a ``PodResizeInProgress`` pod is not resized
again; a ``Deferred`` one (no room on its node now; any unknown reason counts as Deferred, as
the KEP asks) is left to the kubelet, which retries it; an ``Infeasible`` one (larger than its
node) is backed off (:class:`~runtime.backoff.Backoff`, from ``controller.resize_every_seconds``
doubling) and only a different size is sent. A 404/405 from ``pods/resize`` is remembered for the
whole cluster and retried after ``controller.resize_reprobe_seconds``, not every cycle.

Memory limits: Kubernetes 1.33 lowers a memory limit in place only on a container whose memory
``resizePolicy`` is ``RestartContainer`` (and then restarts it: such resizes are counted as
``resize_restart``). Otherwise ``InPlace`` keeps the current memory limit and lowers the request
alone (the request is what frees the node; the limit stays a ceiling), or leaves memory as it is
when request and limit are equal (lowering one would change the pod's QoS class, which a resize
may not); ``InPlaceOrRecreate`` patches the template, as the VPA falls back to eviction.

The condition ``AbleToResize`` says where in-place resizing stands (reasons: ``Resized``,
``ResizeInProgress``, ``ResizeDeferred``, ``MemoryLimitKept``, ``RecreateFallback`` with status
True; ``ResizeInfeasible`` and ``InPlaceResizeUnavailable`` with status False). None of these is
a reconcile error.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from autoscaler.controller.decide import ConditionValue, scaled_limits
from autoscaler.controller.kube_actions import (
    KubeActions,
    format_resource,
    resize_unserved,
    round_request,
)
from autoscaler.controller.settings import ControllerSettings
from autoscaler.controller.status import Conditions
from autoscaler.controller.vertical import ContainerPlan
from autoscaler.controller.workload import WorkloadView
from autoscaler.policy.settings import PolicySettings
from autoscaler.resource.model import UpdateMode
from autoscaler.resource.objects import Autoscaler
from collectors.cluster_model import PodInfo
from collectors.kube import KubeApiError
from runtime.backoff import Backoff

__all__ = [
    "CONDITION",
    "InPlaceChange",
    "PodResize",
    "ResizeState",
    "Resizer",
    "describe",
    "differs",
    "in_place_change",
]

log = logging.getLogger(__name__)

CONDITION = "AbleToResize"
RESTART = "RestartContainer"
# An Infeasible pod is tried again (with a new size) after at most this many decision periods.
_INFEASIBLE_BACKOFF_PERIODS = 16


@dataclass(frozen=True)
class InPlaceChange:
    """What one container's in-place resize sends, and what it means."""

    requests: dict[str, float]
    limits: dict[str, float]
    restarts: bool  # a changed resource's resizePolicy is RestartContainer
    memory_limit_kept: bool  # the memory limit could not fall in place and was left
    needs_restart: bool  # a memory limit must fall and the container cannot restart for it


def in_place_change(
    requests: dict[str, float],
    limits: dict[str, float],
    policy: dict[str, str],
    changes: dict[str, float],
    new_limits: dict[str, float],
) -> InPlaceChange:
    """The in-place resize of one container, with Kubernetes 1.33's rule on memory limits.

    ``requests``/``limits`` are the container's now, ``policy`` its ``resizePolicy`` by
    resource, ``changes``/``new_limits`` what the plan wants. A memory limit decrease without
    ``RestartContainer`` is not sent: the memory limit is kept (request lowered alone), or
    memory is left out when its request equals its limit (QoS class).
    """
    out_requests, out_limits = dict(changes), dict(new_limits)
    kept = needs_restart = False
    old_limit = limits.get("memory")
    new_limit = out_limits.get("memory")
    if (
        old_limit is not None
        and new_limit is not None
        and new_limit < old_limit
        and policy.get("memory") != RESTART
    ):
        needs_restart = True
        if math.isclose(requests.get("memory", 0.0), old_limit):
            out_requests.pop("memory", None)
            out_limits.pop("memory", None)
        else:
            out_limits["memory"] = old_limit
            kept = True
    changed = {r for r, v in out_requests.items() if not math.isclose(v, requests.get(r, 0.0))} | {
        r for r, v in out_limits.items() if not math.isclose(v, limits.get(r, 0.0))
    }
    restarts = any(policy.get(r) == RESTART for r in changed)
    return InPlaceChange(out_requests, out_limits, restarts, kept, needs_restart)


@dataclass
class PodResize:
    """What is known of one pod's resizes: when its Infeasible spell began, the backoff."""

    infeasible_since: float | None = None
    attempts: int = 0
    retry_at: float | None = None


@dataclass
class ResizeState:
    """What the resizer keeps per autoscaler between cycles."""

    last_recreate_at: float | None = None
    pods: dict[str, PodResize] = field(default_factory=dict)  # by pod name


@dataclass
class _Pass:
    """What one in-place pass over the pods found."""

    resized: int = 0
    in_progress: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    infeasible: list[tuple[str, str, float]] = field(default_factory=list)  # pod, why, since
    kept: list[str] = field(default_factory=list)  # pod/container whose memory limit stayed
    needs_template: list[str] = field(default_factory=list)  # pod/container
    unserved: bool = False


class Resizer:
    """Applies vertical plans to a workload's pods; one per controller (so per cluster).

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
        period = settings.resize_every_seconds
        self._backoff = Backoff(initial_s=period, max_s=period * _INFEASIBLE_BACKOFF_PERIODS)
        self._unserved_at: float | None = None  # when pods/resize last answered 404/405

    def resize_served(self, now: float) -> bool:
        """Whether ``pods/resize`` is to be tried now (not known missing, or due a re-probe)."""
        return (
            self._unserved_at is None
            or now - self._unserved_at >= self._settings.resize_reprobe_seconds
        )

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
        if mode is UpdateMode.RECREATE:
            await self._recreate(parsed, state, view, plans, "vertical", now)
            return
        fallback = mode is UpdateMode.IN_PLACE_OR_RECREATE
        found = _Pass(unserved=not self.resize_served(now))
        if not found.unserved:
            found = await self._resize_in_place(parsed, state, view, plans, fallback, now)
        if found.unserved:
            await self._unserved(parsed, state, conditions, view, plans, fallback, now)
            return
        outcome = await self._outcome(parsed, state, view, plans, found, fallback, now)
        conditions.set(CONDITION, outcome, now)

    async def _unserved(
        self,
        parsed: Autoscaler,
        state: ResizeState,
        conditions: Conditions,
        view: WorkloadView,
        plans: list[ContainerPlan],
        fallback: bool,
        now: float,
    ) -> None:
        why = (
            "the API server does not serve pods/resize (Kubernetes before 1.33, or the "
            "InPlacePodVerticalScaling feature gate off)"
        )
        if fallback:
            await self._recreate(parsed, state, view, plans, "resize_unavailable", now)
            value = ConditionValue(
                "True", "RecreateFallback", f"{why}: the pod template is patched"
            )
        else:
            value = ConditionValue(
                "False",
                "InPlaceResizeUnavailable",
                f"{why}; updateMode InPlace never recreates pods (InPlaceOrRecreate or Recreate "
                f"would patch the pod template)",
            )
        conditions.set(CONDITION, value, now)

    async def _outcome(
        self,
        parsed: Autoscaler,
        state: ResizeState,
        view: WorkloadView,
        plans: list[ContainerPlan],
        found: _Pass,
        fallback: bool,
        now: float,
    ) -> ConditionValue:
        timeout = self._settings.resize_infeasible_timeout_seconds
        expired = [p for p, _, since in found.infeasible if fallback and now - since >= timeout]
        if found.needs_template or expired:
            reasons = []
            if expired:
                reasons.append(f"resize Infeasible for {timeout:g} s on {', '.join(expired)}")
            if found.needs_template:
                reasons.append(
                    "a memory limit must fall without resizePolicy RestartContainer on "
                    + ", ".join(found.needs_template)
                )
            why = "infeasible" if expired else "memory_limit_decrease"
            patched = await self._recreate(parsed, state, view, plans, why, now)
            then = "the pod template is patched" if patched else "the pod template was patched"
            return ConditionValue("True", "RecreateFallback", f"{'; '.join(reasons)}: {then}")
        if found.infeasible:
            pod, why, since = found.infeasible[0]
            return ConditionValue(
                "False",
                "ResizeInfeasible",
                f"the kubelet cannot fit the resize of {len(found.infeasible)} pod(s) on their "
                f"node ({pod}: {why}), for {now - since:.0f} s; only a new size is sent, with "
                f"backoff",
            )
        if found.kept:
            return ConditionValue(
                "True",
                "MemoryLimitKept",
                "memory limit kept on " + ", ".join(found.kept) + ": Kubernetes lowers a memory "
                "limit in place only with resizePolicy RestartContainer (the request alone is "
                "lowered, unless it equals the limit)",
            )
        if found.deferred:
            return ConditionValue(
                "True",
                "ResizeDeferred",
                f"waiting for room on the node of {', '.join(found.deferred)} "
                "(the kubelet retries)",
            )
        if found.in_progress:
            return ConditionValue(
                "True", "ResizeInProgress", f"being applied on {', '.join(found.in_progress)}"
            )
        return ConditionValue(
            "True", "Resized", f"pods are resized in place ({found.resized} resized this time)"
        )

    def _observe(self, state: PodResize, pod: PodInfo, now: float) -> str:
        """The pod's resize state: ``busy`` (leave it), ``infeasible``, ``retry`` or ``free``."""
        if pod.resize_in_progress:
            return "busy"
        if pod.resize_pending is None:
            state.infeasible_since = state.retry_at = None
            state.attempts = 0
            return "free"
        if pod.resize_pending[0] != "Infeasible":
            return "busy"
        if state.infeasible_since is None:
            # The size just sent does not fit: the next try waits out the first pause.
            state.infeasible_since = now
            state.attempts = 1
            state.retry_at = now + self._backoff.delay(1, rand=lambda: 0.0)
            return "infeasible"
        if state.retry_at is not None and now >= state.retry_at:
            state.attempts += 1
            state.retry_at = now + self._backoff.delay(state.attempts, rand=lambda: 0.0)
            return "retry"
        return "infeasible"

    async def _resize_in_place(
        self,
        parsed: Autoscaler,
        state: ResizeState,
        view: WorkloadView,
        plans: list[ContainerPlan],
        fallback: bool,
        now: float,
    ) -> _Pass:
        found = _Pass()
        hysteresis = self._policy.vertical.hysteresis
        limit_ratio = self._policy.vertical.limit_ratio
        running = {p.name: p for p in view.pods if p.phase == "Running"}
        for gone in [name for name in state.pods if name not in running]:
            del state.pods[gone]
        by_container = {plan.container: plan for plan in plans}
        for pod in running.values():
            pod_state = state.pods.setdefault(pod.name, PodResize())
            seen = self._observe(pod_state, pod, now)
            if seen == "busy":
                pending = pod.resize_pending
                (found.deferred if pending else found.in_progress).append(pod.name)
                continue
            if seen in ("infeasible", "retry"):
                assert pod.resize_pending is not None and pod_state.infeasible_since is not None
                found.infeasible.append(
                    (pod.name, pod.resize_pending[1], pod_state.infeasible_since)
                )
                if seen == "infeasible":
                    continue
            for c in pod.containers:
                plan = by_container.get(c.name)
                if plan is None:
                    continue
                changes = {
                    resource: round_request(resource, d.request)
                    for resource, d in plan.decisions.items()
                    if differs(c.requests.get(resource, 0.0), d.request, hysteresis, d.reason)
                }
                if not changes:
                    continue
                limits = scaled_limits(c.requests, c.limits, changes, limit_ratio)
                change = in_place_change(c.requests, c.limits, c.resize_policy, changes, limits)
                where = f"{pod.name}/{c.name}"
                if change.needs_restart and fallback:
                    found.needs_template.append(where)
                    continue
                if change.memory_limit_kept or (change.needs_restart and not change.requests):
                    found.kept.append(where)
                if not change.requests:
                    continue
                try:
                    await self._actions.resize_pod(
                        parsed.namespace, pod.name, c.name, change.requests, change.limits
                    )
                except KubeApiError as e:
                    if resize_unserved(e):
                        log.warning("pods/resize is not served: %s", e)
                        self._unserved_at = now
                        found.unserved = True
                        return found
                    if e.status == 404:  # the pod went away since the model saw it
                        break
                    raise
                self._unserved_at = None
                found.resized += 1
                self._record_resize(parsed, pod.name, c.name, c.requests, change, plan, now)
                await self._actions.event(
                    parsed.namespace,
                    parsed.name,
                    parsed.uid,
                    "ResizedWithRestart" if change.restarts else "Resized",
                    f"pod {pod.name} container {c.name}: {describe(c.requests, change.requests)}"
                    + (
                        " (resizePolicy RestartContainer: the container restarts)"
                        if change.restarts
                        else ""
                    ),
                )
        return found

    async def _recreate(
        self,
        parsed: Autoscaler,
        state: ResizeState,
        view: WorkloadView,
        plans: list[ContainerPlan],
        reason: str,
        now: float,
    ) -> bool:
        """Patch the pod template to the plans, at most once per the interval; whether it did."""
        interval = self._settings.recreate_min_interval_seconds
        if state.last_recreate_at is not None and now - state.last_recreate_at < interval:
            return False
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
            return False
        await self._actions.patch_template(parsed.namespace, view.kind, view.name, changes)
        state.last_recreate_at = now
        summary = "; ".join(f"{name}: {describe({}, ch)}" for name, (ch, _) in changes.items())
        key = (parsed.namespace, parsed.name, "recreate", reason)
        self._decisions[key] = self._decisions.get(key, 0) + 1
        self._actions_log.append(
            {
                "time": now,
                "autoscaler": f"{parsed.namespace}/{parsed.name}",
                "kind": "recreate",
                "reason": reason,
                "message": summary,
            }
        )
        await self._actions.event(
            parsed.namespace, parsed.name, parsed.uid, "TemplateUpdated", summary
        )
        return True

    def _record_resize(
        self,
        parsed: Autoscaler,
        pod: str,
        container: str,
        before: dict[str, float],
        change: InPlaceChange,
        plan: ContainerPlan,
        now: float,
    ) -> None:
        reasons = ",".join(sorted({plan.decisions[r].reason.value for r in change.requests}))
        direction = "resize_restart" if change.restarts else "resize"
        key = (parsed.namespace, parsed.name, direction, reasons)
        self._decisions[key] = self._decisions.get(key, 0) + 1
        self._actions_log.append(
            {
                "time": now,
                "autoscaler": f"{parsed.namespace}/{parsed.name}",
                "kind": "resize",
                "pod": pod,
                "container": container,
                "reason": reasons,
                "restart": change.restarts,
                "message": describe(before, change.requests),
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
