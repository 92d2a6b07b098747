"""Snapshots for the cost model, from the live cluster model or from collected series.

The series are the ones foresight exports (``foresight_container_resource_requests`` and so
on), whether read back from Prometheus, the embedded store or a ``/metrics`` page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autoscaler.cost.model import Container, Node, Recommendation, RecommendationKey, Snapshot
from autoscaler.cost.pricing import NodePrices, node_prices
from autoscaler.cost.settings import CostSettings
from collectors.cluster_model import ClusterModel
from collectors.kubelet import NodeUsageView
from runtime import names

ACTIVE_PHASES = frozenset({"Running", "Pending"})  # pods that hold node resources
STORAGE = "ephemeral-storage"

Samples = Sequence[tuple[Mapping[str, str], float]]

# The series a snapshot is built from.
SERIES = (
    names.CONTAINER_REQUESTS,
    names.CONTAINER_CPU_CORES,
    names.CONTAINER_MEMORY,
    names.POD_PHASE,
    names.POD_OWNER,
    names.NODE_CAPACITY,
    names.NODE_INFO,
    names.COST_NODE_PRICE,
    names.AUTOSCALER_INFO,
    names.AUTOSCALER_RECOMMENDED_CPU,
    names.AUTOSCALER_RECOMMENDED_MEMORY,
)


def is_gpu(resource: str) -> bool:
    """Extended resources that are GPUs (``nvidia.com/gpu``, ``amd.com/gpu``...)."""
    return resource == "gpu" or resource.endswith("/gpu")


def _gpus(resources: Mapping[str, float]) -> float:
    return sum(v for r, v in resources.items() if is_gpu(r))


def snapshot_from_cluster(
    model: ClusterModel, latest: Mapping[str, NodeUsageView], settings: CostSettings
) -> Snapshot:
    """What runs now, from the watched objects and the last kubelet scrapes."""
    nodes = tuple(
        Node(
            n.name,
            n.capacity.get("cpu", 0.0),
            n.capacity.get("memory", 0.0),
            _gpus(n.capacity),
            node_prices(n.labels, settings),
        )
        for n in model.nodes()
    )
    containers = []
    for pod in model.pods():
        if pod.phase not in ACTIVE_PHASES or not pod.node:
            continue
        owner = model.workload_of(pod) or ("Pod", pod.name)
        view = latest.get(pod.node)
        for c in pod.containers:
            usage = view.containers.get((pod.namespace, pod.name, c.name)) if view else None
            containers.append(
                Container(
                    namespace=pod.namespace,
                    pod=pod.name,
                    container=c.name,
                    node=pod.node,
                    workload_kind=owner[0],
                    workload=owner[1],
                    cpu_request=c.requests.get("cpu", 0.0),
                    memory_request=c.requests.get("memory", 0.0),
                    gpu_request=_gpus(c.requests),
                    storage_request=c.requests.get(STORAGE, 0.0),
                    cpu_usage=usage[0] if usage else None,
                    memory_usage=usage[1] if usage else None,
                )
            )
    return Snapshot(nodes, tuple(containers))


def snapshot_from_series(
    series: Mapping[str, Samples], settings: CostSettings
) -> tuple[Snapshot, dict[RecommendationKey, Recommendation]]:
    """A snapshot from the values of :data:`SERIES` at one moment.

    Node prices exported by a running foresight (``foresight_cost_node_price``) win, since it
    saw every node label; otherwise overrides can match the instance type and zone only.
    """
    exported: dict[str, dict[str, float]] = {}
    for labels, value in series.get(names.COST_NODE_PRICE, ()):
        exported.setdefault(labels.get("node", ""), {})[labels.get("resource", "")] = value
    capacity: dict[str, dict[str, float]] = {}
    for labels, value in series.get(names.NODE_CAPACITY, ()):
        capacity.setdefault(labels.get("node", ""), {})[labels.get("resource", "")] = value
    node_labels = {
        labels.get("node", ""): {
            "kubernetes.io/hostname": labels.get("node", ""),
            "node.kubernetes.io/instance-type": labels.get("instance_type", ""),
            "topology.kubernetes.io/zone": labels.get("zone", ""),
        }
        for labels, _ in series.get(names.NODE_INFO, ())
    }
    nodes = []
    for name, resources in sorted(capacity.items()):
        prices = node_prices(node_labels.get(name, {"kubernetes.io/hostname": name}), settings)
        if name in exported:
            given = exported[name]
            prices = NodePrices(
                given.get("cpu", prices.cpu_core_hour),
                given.get("memory", prices.memory_gib_hour),
                given.get("gpu", prices.gpu_hour),
            )
        nodes.append(
            Node(
                name,
                resources.get("cpu", 0.0),
                resources.get("memory", 0.0),
                _gpus(resources),
                prices,
            )
        )
    return Snapshot(tuple(nodes), _containers(series)), _recommendations(series)


PodKey = tuple[str, str]
ContainerKey = tuple[str, str, str]


def _containers(series: Mapping[str, Samples]) -> tuple[Container, ...]:
    active = {
        (lb.get("namespace", ""), lb.get("pod", ""))
        for lb, v in series.get(names.POD_PHASE, ())
        if v == 1 and lb.get("phase") in ACTIVE_PHASES
    }
    owners: dict[PodKey, tuple[str, str]] = {
        (lb.get("namespace", ""), lb.get("pod", "")): (
            lb.get("workload_kind", ""),
            lb.get("workload", ""),
        )
        for lb, _ in series.get(names.POD_OWNER, ())
    }
    fields: dict[ContainerKey, dict[str, float]] = {}
    nodes: dict[ContainerKey, str] = {}

    def put(labels: Mapping[str, str], field: str, value: float) -> None:
        key = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
        if key[:2] not in active or not labels.get("node"):
            return
        nodes[key] = labels["node"]
        values = fields.setdefault(key, {})
        values[field] = values.get(field, 0.0) + value

    for labels, value in series.get(names.CONTAINER_REQUESTS, ()):
        resource = labels.get("resource", "")
        if resource in ("cpu", "memory", STORAGE) or is_gpu(resource):
            put(labels, "gpu" if is_gpu(resource) else resource, value)
    for labels, value in series.get(names.CONTAINER_CPU_CORES, ()):
        put(labels, "cpu_usage", value)
    for labels, value in series.get(names.CONTAINER_MEMORY, ()):
        put(labels, "memory_usage", value)
    out = []
    for key, values in sorted(fields.items()):
        namespace, pod, container = key
        kind, workload = owners.get((namespace, pod), ("Pod", pod))
        out.append(
            Container(
                namespace=namespace,
                pod=pod,
                container=container,
                node=nodes[key],
                workload_kind=kind,
                workload=workload,
                cpu_request=values.get("cpu", 0.0),
                memory_request=values.get("memory", 0.0),
                gpu_request=values.get("gpu", 0.0),
                storage_request=values.get(STORAGE, 0.0),
                cpu_usage=values.get("cpu_usage"),
                memory_usage=values.get("memory_usage"),
            )
        )
    return tuple(out)


def _recommendations(series: Mapping[str, Samples]) -> dict[RecommendationKey, Recommendation]:
    targets = {
        (lb.get("namespace", ""), lb.get("autoscaler", "")): lb.get("target", "")
        for lb, _ in series.get(names.AUTOSCALER_INFO, ())
    }
    cpu: dict[RecommendationKey, float] = {}
    memory: dict[RecommendationKey, float] = {}
    for name, into in (
        (names.AUTOSCALER_RECOMMENDED_CPU, cpu),
        (names.AUTOSCALER_RECOMMENDED_MEMORY, memory),
    ):
        for labels, value in series.get(name, ()):
            namespace = labels.get("namespace", "")
            target = targets.get((namespace, labels.get("autoscaler", "")))
            if target:
                into[(namespace, target, labels.get("container", ""))] = value
    return {k: Recommendation(cpu.get(k), memory.get(k)) for k in cpu.keys() | memory.keys()}
