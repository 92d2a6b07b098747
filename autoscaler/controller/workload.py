"""What the controller needs to know of a target workload, read from the cluster model."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from collectors.cluster_model import ClusterModel, PodInfo

__all__ = ["ContainerView", "PodIndex", "WorkloadView", "pods_by_workload", "view_of"]


@dataclass(frozen=True)
class ContainerView:
    """One container of one pod."""

    pod: str
    name: str
    requests: dict[str, float]
    limits: dict[str, float]
    restarts: int
    last_termination_reason: str


@dataclass(frozen=True)
class WorkloadView:
    """A Deployment or StatefulSet with its pods."""

    kind: str
    namespace: str
    name: str
    replicas: int  # spec.replicas
    ready: int
    pods: tuple[PodInfo, ...]
    containers: tuple[ContainerView, ...] = field(default=())

    def request_per_pod(self, resource: str) -> float | None:
        """The median over running pods of the sum of their containers' requests."""
        totals = [
            sum(c.requests.get(resource, 0.0) for c in pod.containers)
            for pod in self.pods
            if pod.phase in ("Running", "Pending")
        ]
        totals = [t for t in totals if t > 0]
        return statistics.median(totals) if totals else None

    def container_request(self, container: str, resource: str) -> float:
        """The request of one container name over the pods (the upper median; 0 if none)."""
        requests = sorted(
            c.requests.get(resource, 0.0) for c in self.containers if c.name == container
        )
        return requests[len(requests) // 2] if requests else 0.0

    def container_names(self) -> list[str]:
        """Container names, in pod order, without repeats."""
        return list(dict.fromkeys(c.name for c in self.containers))


PodIndex = dict[tuple[str, str, str], list[PodInfo]]


def pods_by_workload(model: ClusterModel) -> PodIndex:
    """Live pods by (namespace, kind, name) of their top-level workload, in one pass."""
    index: PodIndex = {}
    for pod in model.pods():
        owner = model.workload_of(pod)
        if owner is not None and pod.phase not in ("Succeeded", "Failed"):
            index.setdefault((pod.namespace, *owner), []).append(pod)
    return index


def view_of(
    model: ClusterModel, pods: PodIndex, namespace: str, kind: str, name: str
) -> WorkloadView | None:
    """The workload as the model knows it, or None when it does not exist."""
    workload = next(
        (w for w in model.workloads(kind) if w.namespace == namespace and w.name == name), None
    )
    if workload is None:
        return None
    own = tuple(pods.get((namespace, kind, name), ()))
    containers = tuple(
        ContainerView(p.name, c.name, c.requests, c.limits, c.restarts, c.last_termination_reason)
        for p in own
        for c in p.containers
    )
    return WorkloadView(
        kind,
        namespace,
        name,
        workload.desired if workload.desired is not None else len(own),
        workload.ready,
        own,
        containers,
    )
