"""The in-memory model of the cluster that the other parts query.

Built from raw API JSON (list and watch events) into small frozen records: only the fields
foresight uses, with quantities already in cores and bytes. Pods are resolved to the
workload that owns them (ReplicaSet → Deployment, Job → CronJob), so that usage can be
summed per workload.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.quantity import parse_quantity

Key = tuple[str, str]  # namespace ("" for cluster-scoped), name

KINDS = (
    "Node",
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
)
WORKLOAD_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet"}
)


def _quantities(raw: Mapping[str, Any] | None) -> dict[str, float]:
    out = {}
    for name, value in (raw or {}).items():
        try:
            out[name] = parse_quantity(value)
        except ValueError:
            continue  # an extended resource with a value we cannot read
    return out


def _time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class NodeInfo:
    name: str
    labels: dict[str, str]
    capacity: dict[str, float]
    allocatable: dict[str, float]
    conditions: dict[str, str]
    addresses: tuple[tuple[str, str], ...]
    kubelet_port: int | None
    unschedulable: bool

    @property
    def ready(self) -> bool:
        return self.conditions.get("Ready") == "True"

    @property
    def instance_type(self) -> str:
        return self.labels.get("node.kubernetes.io/instance-type", "")

    @property
    def zone(self) -> str:
        return self.labels.get("topology.kubernetes.io/zone", "")


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    requests: dict[str, float]
    limits: dict[str, float]
    restarts: int = 0
    last_termination_reason: str = ""
    ready: bool = False
    ports: tuple[int, ...] = ()  # declared containerPorts
    # resizePolicy by resource: NotRequired (the default), PreferNoRestart or RestartContainer
    resize_policy: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    uid: str
    node: str
    phase: str
    ready: bool
    owner: tuple[str, str] | None  # kind, name of the controller
    labels: dict[str, str]
    annotations: dict[str, str]
    pod_ip: str
    containers: tuple[ContainerInfo, ...]
    start_time: float | None
    # In-place resize (Kubernetes 1.33+): the PodResizePending condition's reason (Deferred,
    # Infeasible) and message, and whether a PodResizeInProgress condition is True.
    resize_pending: tuple[str, str] | None = None
    resize_in_progress: bool = False

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in self.containers)


@dataclass(frozen=True)
class WorkloadInfo:
    kind: str
    namespace: str
    name: str
    uid: str
    owner: tuple[str, str] | None
    desired: int | None
    ready: int
    available: int
    updated: int
    selector: dict[str, str]
    # Jobs and CronJobs.
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    complete: bool | None = None
    last_schedule_time: float | None = None
    suspended: bool = False


@dataclass(frozen=True)
class HpaInfo:
    namespace: str
    name: str
    target_kind: str
    target_name: str
    min_replicas: int
    max_replicas: int
    current_replicas: int
    desired_replicas: int


def _controller(meta: Mapping[str, Any]) -> tuple[str, str] | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref["kind"]), str(ref["name"])
    return None


def parse_node(obj: Mapping[str, Any]) -> NodeInfo:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    return NodeInfo(
        name=meta["name"],
        labels=dict(meta.get("labels") or {}),
        capacity=_quantities(status.get("capacity")),
        allocatable=_quantities(status.get("allocatable")),
        conditions={c["type"]: c.get("status", "Unknown") for c in status.get("conditions") or []},
        addresses=tuple((a["type"], a["address"]) for a in status.get("addresses") or []),
        kubelet_port=int(port) if port else None,
        unschedulable=bool(spec.get("unschedulable")),
    )


def parse_pod(obj: Mapping[str, Any]) -> PodInfo:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    statuses = {s["name"]: s for s in status.get("containerStatuses") or []}
    containers = []
    for c in spec.get("containers") or []:
        resources = c.get("resources") or {}
        st = statuses.get(c["name"], {})
        last = (st.get("lastState") or {}).get("terminated") or {}
        containers.append(
            ContainerInfo(
                name=c["name"],
                requests=_quantities(resources.get("requests")),
                limits=_quantities(resources.get("limits")),
                restarts=int(st.get("restartCount", 0)),
                last_termination_reason=str(last.get("reason", "")),
                ready=bool(st.get("ready")),
                ports=tuple(
                    int(p["containerPort"]) for p in c.get("ports") or [] if "containerPort" in p
                ),
                resize_policy={
                    str(p.get("resourceName", "")): str(p.get("restartPolicy", "NotRequired"))
                    for p in c.get("resizePolicy") or []
                },
            )
        )
    conditions = {c["type"]: c.get("status") for c in status.get("conditions") or []}
    pending = next(
        (
            c
            for c in status.get("conditions") or []
            if c.get("type") == "PodResizePending" and c.get("status") == "True"
        ),
        None,
    )
    return PodInfo(
        namespace=meta.get("namespace", ""),
        name=meta["name"],
        uid=meta.get("uid", ""),
        node=spec.get("nodeName", ""),
        phase=status.get("phase", "Pending"),
        ready=conditions.get("Ready") == "True",
        owner=_controller(meta),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        pod_ip=status.get("podIP", ""),
        containers=tuple(containers),
        start_time=_time(status.get("startTime")),
        resize_pending=(
            (str(pending.get("reason", "")), str(pending.get("message", "")))
            if pending is not None
            else None
        ),
        resize_in_progress=conditions.get("PodResizeInProgress") == "True",
    )


def parse_workload(kind: str, obj: Mapping[str, Any]) -> WorkloadInfo:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    selector = ((spec.get("selector") or {}).get("matchLabels")) or {}
    common = {
        "kind": kind,
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "owner": _controller(meta),
        "selector": dict(selector),
    }
    if kind == "DaemonSet":
        return WorkloadInfo(
            **common,
            desired=int(status.get("desiredNumberScheduled", 0)),
            ready=int(status.get("numberReady", 0)),
            available=int(status.get("numberAvailable", 0)),
            updated=int(status.get("updatedNumberScheduled", 0)),
        )
    if kind == "Job":
        conditions = {c["type"]: c.get("status") for c in status.get("conditions") or []}
        complete = True if conditions.get("Complete") == "True" else None
        if conditions.get("Failed") == "True":
            complete = False
        return WorkloadInfo(
            **common,
            desired=spec.get("completions"),
            ready=int(status.get("ready", 0) or 0),
            available=0,
            updated=0,
            active=int(status.get("active", 0) or 0),
            succeeded=int(status.get("succeeded", 0) or 0),
            failed=int(status.get("failed", 0) or 0),
            complete=complete,
        )
    if kind == "CronJob":
        return WorkloadInfo(
            **common,
            desired=None,
            ready=0,
            available=0,
            updated=0,
            active=len(status.get("active") or []),
            last_schedule_time=_time(status.get("lastScheduleTime")),
            suspended=bool(spec.get("suspend")),
        )
    return WorkloadInfo(
        **common,
        desired=int(spec.get("replicas", 1)),
        ready=int(status.get("readyReplicas", 0) or 0),
        available=int(status.get("availableReplicas", 0) or 0),
        updated=int(status.get("updatedReplicas", 0) or 0),
    )


def parse_hpa(obj: Mapping[str, Any]) -> HpaInfo:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    target = spec.get("scaleTargetRef") or {}
    return HpaInfo(
        namespace=meta.get("namespace", ""),
        name=meta["name"],
        target_kind=str(target.get("kind", "")),
        target_name=str(target.get("name", "")),
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec.get("maxReplicas", 0)),
        current_replicas=int(status.get("currentReplicas", 0) or 0),
        desired_replicas=int(status.get("desiredReplicas", 0) or 0),
    )


Record = NodeInfo | PodInfo | WorkloadInfo | HpaInfo


def parse(kind: str, obj: Mapping[str, Any]) -> Record:
    """The record of an API object of a watched kind."""
    if kind == "Node":
        return parse_node(obj)
    if kind == "Pod":
        return parse_pod(obj)
    if kind == "HorizontalPodAutoscaler":
        return parse_hpa(obj)
    return parse_workload(kind, obj)


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


# Records of one kind are kept in this many shards (a power of two): a snapshot shares them
# all, and a change copies one shard, not the kind's every record.
_SHARDS = 64


class Records:
    """One kind's records by key, in shards that snapshots share until a change.

    :meth:`snapshot` is a handful of list copies however many records there are; the first
    change to a shard after it copies that shard alone (1/64 of the kind). Copying a whole
    kind at once touched the reference count of every record: while a child forked for
    ``/metrics`` shares the parent's pages, that is a copied page per few records, 20-35 ms
    of the event loop's time per cycle for 30,000 pods. Iteration goes shard by shard (not in
    insertion order)."""

    __slots__ = ("_owned", "_shards")

    def __init__(self, items: Iterable[tuple[Key, Record]] = ()) -> None:
        self._shards: list[dict[Key, Record]] = [{} for _ in range(_SHARDS)]
        self._owned = [True] * _SHARDS
        for key, record in items:
            self._shards[hash(key) & (_SHARDS - 1)][key] = record

    def snapshot(self) -> Records:
        """A copy that later changes to either side do not reach (neither is copied now)."""
        copy = Records.__new__(Records)
        copy._shards = list(self._shards)
        copy._owned = [False] * _SHARDS
        self._owned = [False] * _SHARDS
        return copy

    def _writable(self, key: Key) -> dict[Key, Record]:
        i = hash(key) & (_SHARDS - 1)
        if not self._owned[i]:
            self._shards[i] = dict(self._shards[i])
            self._owned[i] = True
        return self._shards[i]

    def __setitem__(self, key: Key, record: Record) -> None:
        self._writable(key)[key] = record

    def pop(self, key: Key, default: Record | None = None) -> Record | None:
        """Remove ``key``; its record, or ``default``."""
        return self._writable(key).pop(key, default)

    def get(self, key: Key, default: Record | None = None) -> Record | None:
        return self._shards[hash(key) & (_SHARDS - 1)].get(key, default)

    def __getitem__(self, key: Key) -> Record:
        return self._shards[hash(key) & (_SHARDS - 1)][key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and key in self._shards[hash(key) & (_SHARDS - 1)]

    def __len__(self) -> int:
        return sum(map(len, self._shards))

    def __iter__(self) -> Iterator[Key]:
        for shard in self._shards:
            yield from shard

    def keys(self) -> Iterator[Key]:
        return iter(self)

    def values(self) -> Iterator[Record]:
        for shard in self._shards:
            yield from shard.values()

    def items(self) -> Iterator[tuple[Key, Record]]:
        for shard in self._shards:
            yield from shard.items()


@dataclass
class ClusterModel:
    """Records by kind and key; replaced by lists, patched by watch events."""

    objects: dict[str, Records] = field(default_factory=lambda: {k: Records() for k in KINDS})
    parse_errors: int = 0

    def snapshot(self) -> ClusterModel:
        """A copy that watch events no longer change, for readers in other threads; cheap
        (see :class:`Records`). Only the thread that changes the model may take it."""
        return ClusterModel(
            objects={kind: records.snapshot() for kind, records in self.objects.items()},
            parse_errors=self.parse_errors,
        )

    def replace(self, kind: str, items: Iterable[Mapping[str, Any]]) -> None:
        """Everything of ``kind`` after a (re)list."""
        fresh = Records()
        for obj in items:
            record = self._parse(kind, obj)
            if record is not None:
                fresh[key_of(obj)] = record
        self.objects[kind] = fresh

    def apply(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> None:
        """One watch event (ADDED, MODIFIED, DELETED)."""
        key = key_of(obj)
        if event_type == "DELETED":
            self.objects[kind].pop(key, None)
            return
        record = self._parse(kind, obj)
        if record is not None:
            self.objects[kind][key] = record

    def _parse(self, kind: str, obj: Mapping[str, Any]) -> Record | None:
        try:
            return parse(kind, obj)
        except (KeyError, TypeError, ValueError):
            # A malformed object is skipped, not fatal: the rest of the cluster still counts.
            self.parse_errors += 1
            return None

    def nodes(self) -> list[NodeInfo]:
        return [r for r in self.objects["Node"].values() if isinstance(r, NodeInfo)]

    def pods(self) -> list[PodInfo]:
        return [r for r in self.objects["Pod"].values() if isinstance(r, PodInfo)]

    def workloads(self, kind: str | None = None) -> list[WorkloadInfo]:
        kinds = [kind] if kind else [k for k in KINDS if k in WORKLOAD_KINDS]
        return [r for k in kinds for r in self.objects[k].values() if isinstance(r, WorkloadInfo)]

    def hpas(self) -> list[HpaInfo]:
        return [
            r for r in self.objects["HorizontalPodAutoscaler"].values() if isinstance(r, HpaInfo)
        ]

    def workload_of(self, pod: PodInfo) -> tuple[str, str] | None:
        """(kind, name) of the top-level workload of a pod: a ReplicaSet's Deployment, a Job's
        CronJob, or the direct owner."""
        if pod.owner is None:
            return None
        kind, name = pod.owner
        for _ in range(3):
            parent_kind = {"ReplicaSet": "ReplicaSet", "Job": "Job"}.get(kind)
            if parent_kind is None:
                break
            owner = self.objects[parent_kind].get((pod.namespace, name))
            if not isinstance(owner, WorkloadInfo) or owner.owner is None:
                break
            kind, name = owner.owner
        return kind, name

    def hpas_targeting(self, namespace: str, kind: str, name: str) -> list[HpaInfo]:
        """HPAs that scale the given workload (a conflict for foresight)."""
        return [
            h
            for h in self.hpas()
            if h.namespace == namespace and h.target_kind == kind and h.target_name == name
        ]
