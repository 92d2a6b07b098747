"""Container requests of one autoscaler: usage in, recommendations and resizes out.

Every reconcile feeds each pod's container usage to a :class:`ContainerSizer` per container
and resource (the VPA way: one histogram per container name, fed by all pods), and counts
OOM kills from restart counts. CPU usage counts the time a container was throttled at its
limit (cAdvisor's CFS counters, :func:`autoscaler.policy.vertical.cpu_need`), so a container
held at its limit is sized for what it asked, not for the limit. Decisions are made every
``resize_every_seconds`` or at once after an OOM kill.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from autoscaler.controller.load import quote
from autoscaler.controller.workload import WorkloadView
from autoscaler.policy.settings import VerticalSettings
from autoscaler.policy.sizer import ContainerSizer
from autoscaler.policy.vertical import VerticalDecision, cpu_need
from autoscaler.resource.model import VerticalSpec
from runtime import names, names_kubelet

__all__ = ["ContainerPlan", "VerticalKeeper", "usage_queries"]

_FIRST_BUCKET = {"cpu": 0.001, "memory": 2.0**20}
OOM_KILLED = "OOMKilled"
# Usage's key for the cores a container spent throttled (not a resource: added to "cpu").
THROTTLED = "cpu_throttled"
# Rate window of the throttling counter: several cAdvisor scrapes (30 s apart by default).
THROTTLED_WINDOW = "5m"


def usage_queries(view: WorkloadView) -> dict[str, str]:
    """PromQL for the usage of every container of the workload's pods, per resource, and
    for the cores each spent throttled (``cpu_throttled``)."""
    # Pod names are DNS labels: a dot is the only regex character they may hold.
    pods = "|".join(p.name.replace(".", "\\\\.") for p in view.pods) or "$^"
    ns = quote(view.namespace)
    throttled = (
        f'{names_kubelet.CFS_THROTTLED_SECONDS}{{job="{names_kubelet.KUBELET_JOB}",'
        f'metrics_path="{names_kubelet.CADVISOR_PATH}",namespace="{ns}",pod=~"{pods}",'
        'container!=""}'
    )
    return {
        "cpu": f'{names.CONTAINER_CPU_CORES}{{namespace="{ns}",pod=~"{pods}"}}',
        "memory": f'{names.CONTAINER_MEMORY}{{namespace="{ns}",pod=~"{pods}"}}',
        THROTTLED: (f"sum by (namespace, pod, container) (rate({throttled}[{THROTTLED_WINDOW}]))"),
    }


@dataclass(frozen=True)
class ContainerPlan:
    """The decision for each controlled resource of one container."""

    container: str
    decisions: dict[str, VerticalDecision]


class VerticalKeeper:
    """Sizers and OOM bookkeeping of one autoscaler."""

    def __init__(self, settings: VerticalSettings, interval_seconds: float) -> None:
        self.settings = settings
        self.interval_seconds = interval_seconds
        self._sizers: dict[tuple[str, str], ContainerSizer] = {}
        self._restarts: dict[tuple[str, str], int] = {}
        self.decided_at: float | None = None
        self.oom_pending = False
        self.ooms = 0

    def _sizer(self, container: str, resource: str) -> ContainerSizer:
        key = (container, resource)
        sizer = self._sizers.get(key)
        if sizer is None:
            sizer = self._sizers[key] = ContainerSizer(
                resource, self.settings, _FIRST_BUCKET[resource]
            )
        return sizer

    def observe(
        self, view: WorkloadView, usage: Mapping[tuple[str, str, str], float], at: float
    ) -> None:
        """Usage by (pod, container, resource), and restarts seen in ``view``; the cores a
        container spent throttled (key ``cpu_throttled``) count as CPU it used."""
        for (pod, container, resource), value in usage.items():
            if resource not in _FIRST_BUCKET:
                continue
            used = value
            if resource == "cpu":
                used = cpu_need(value, usage.get((pod, container, THROTTLED)))
            self._sizer(container, resource).observe(at, used)
        for c in view.containers:
            key = (c.pod, c.name)
            before = self._restarts.get(key)
            self._restarts[key] = c.restarts
            if before is None or c.restarts <= before:
                continue
            if c.last_termination_reason == OOM_KILLED:
                used = c.limits.get("memory") or usage.get((c.pod, c.name, "memory"), 0.0)
                self._sizer(c.name, "memory").oom(used)
                self.oom_pending = True
                self.ooms += 1
        alive = {(c.pod, c.name) for c in view.containers}
        for key in [k for k in self._restarts if k not in alive]:
            del self._restarts[key]

    def due(self, now: float) -> bool:
        """Whether a decision is due (schedule, or an OOM kill since the last one)."""
        return (
            self.oom_pending
            or self.decided_at is None
            or now - self.decided_at >= self.interval_seconds
        )

    def decide(self, spec: VerticalSpec, view: WorkloadView, now: float) -> list[ContainerPlan]:
        """Decisions for every controlled container and resource that has usage."""
        plans = []
        for container in view.container_names():
            policy = spec.policy_for(container)
            if policy.mode == "Off":
                continue
            decisions: dict[str, VerticalDecision] = {}
            for resource in spec.controlled_resources:
                sizer = self._sizers.get((container, resource))
                if sizer is None or sizer.samples == 0:
                    continue
                current = view.container_request(container, resource)
                low = policy.min_allowed.value(resource) or 0.0
                high = policy.max_allowed.value(resource)
                decisions[resource] = sizer.decide(
                    now, current, low, high if high is not None else float("inf")
                )
            if decisions:
                plans.append(ContainerPlan(container, decisions))
        self.decided_at = now
        self.oom_pending = False
        return plans
