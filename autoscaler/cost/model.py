"""The allocation maths, as OpenCost does it: plain values in, plain values out.

Each container pays, per resource, for ``max(request, usage)`` at its node's price; a node
costs its capacity at its price; what the node costs and nobody pays for is idle. GPUs and
storage have no usage figure, so they are charged by request. Storage (requested ephemeral
storage) is not part of a node's price and so never idle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from autoscaler.cost.pricing import GIB, NodePrices

RESOURCES = ("cpu", "memory", "gpu", "storage")
NODE_RESOURCES = ("cpu", "memory", "gpu")


@dataclass(frozen=True)
class Node:
    """A node's capacity and prices."""

    name: str
    cpu_cores: float
    memory_bytes: float
    gpus: float
    prices: NodePrices


@dataclass(frozen=True)
class Container:
    """One running container's requests and usage (usage ``None`` when not collected)."""

    namespace: str
    pod: str
    container: str
    node: str
    workload_kind: str
    workload: str
    cpu_request: float = 0.0
    memory_request: float = 0.0
    gpu_request: float = 0.0
    storage_request: float = 0.0
    cpu_usage: float | None = None
    memory_usage: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """What the cluster ran at one moment."""

    nodes: tuple[Node, ...]
    containers: tuple[Container, ...]


@dataclass(frozen=True)
class ContainerCost:
    """Hourly cost of one container by resource, and the quantities charged."""

    container: Container
    hourly: Mapping[str, float]
    charged: Mapping[str, float]  # cores, bytes, GPUs, bytes


@dataclass(frozen=True)
class NodeCost:
    """Hourly cost of one node by resource, what of it is allocated, and the rest (idle)."""

    node: str
    hourly: Mapping[str, float]
    allocated: Mapping[str, float]

    @property
    def idle(self) -> dict[str, float]:
        """Node cost minus allocated cost, per resource (never negative)."""
        return {r: max(0.0, self.hourly[r] - self.allocated.get(r, 0.0)) for r in self.hourly}


@dataclass(frozen=True)
class Allocation:
    """The cost of a snapshot, per container and per node."""

    containers: tuple[ContainerCost, ...]
    nodes: tuple[NodeCost, ...]


@dataclass(frozen=True)
class Recommendation:
    """A recommended request per container of a workload (``None``: no recommendation)."""

    cpu_cores: float | None = None
    memory_bytes: float | None = None


RecommendationKey = tuple[str, str, str]  # namespace, workload, container


@dataclass
class Totals:
    """Hourly figures summed over some containers."""

    hourly: dict[str, float] = field(default_factory=lambda: dict.fromkeys(RESOURCES, 0.0))
    cpu_usage: float = 0.0
    cpu_request: float = 0.0
    memory_usage: float = 0.0
    memory_request: float = 0.0
    savings_hourly: float = 0.0

    @property
    def total_hourly(self) -> float:
        return sum(self.hourly.values())


def allocate(snapshot: Snapshot, default: NodePrices, storage_gib_hour: float) -> Allocation:
    """Charge every container for max(request, usage) at its node's prices."""
    nodes = {n.name: n for n in snapshot.nodes}
    allocated: dict[str, dict[str, float]] = {n.name: {} for n in snapshot.nodes}
    costs = []
    for c in snapshot.containers:
        node = nodes.get(c.node)
        prices = node.prices if node is not None else default
        charged = {
            "cpu": max(c.cpu_request, c.cpu_usage or 0.0),
            "memory": max(c.memory_request, c.memory_usage or 0.0),
            "gpu": c.gpu_request,
            "storage": c.storage_request,
        }
        hourly = {
            "cpu": charged["cpu"] * prices.cpu_core_hour,
            "memory": charged["memory"] / GIB * prices.memory_gib_hour,
            "gpu": charged["gpu"] * prices.gpu_hour,
            "storage": charged["storage"] / GIB * storage_gib_hour,
        }
        costs.append(ContainerCost(c, hourly, charged))
        if node is not None:
            on_node = allocated[node.name]
            for r in NODE_RESOURCES:
                on_node[r] = on_node.get(r, 0.0) + hourly[r]
    node_costs = tuple(
        NodeCost(
            n.name,
            {
                "cpu": n.cpu_cores * n.prices.cpu_core_hour,
                "memory": n.memory_bytes / GIB * n.prices.memory_gib_hour,
                "gpu": n.gpus * n.prices.gpu_hour,
            },
            allocated[n.name],
        )
        for n in snapshot.nodes
    )
    return Allocation(tuple(costs), node_costs)


def savings_hourly(
    cost: ContainerCost,
    recommendations: Mapping[RecommendationKey, Recommendation],
    prices: NodePrices,
) -> float:
    """What applying the recommended requests saves per hour (negative: costs more).

    Counted on requests, as the scheduler reserves them: (request − recommended) × price.
    """
    c = cost.container
    rec = recommendations.get((c.namespace, c.workload, c.container))
    if rec is None:
        return 0.0
    saved = 0.0
    if rec.cpu_cores is not None:
        saved += (c.cpu_request - rec.cpu_cores) * prices.cpu_core_hour
    if rec.memory_bytes is not None:
        saved += (c.memory_request - rec.memory_bytes) / GIB * prices.memory_gib_hour
    return saved


def group(
    allocation: Allocation,
    key: str,
    default: NodePrices,
    recommendations: Mapping[RecommendationKey, Recommendation] | None = None,
    prices: Mapping[str, NodePrices] | None = None,
) -> dict[str, Totals]:
    """Totals per ``namespace``, ``workload`` (``namespace/kind/name``) or ``node``."""
    out: dict[str, Totals] = {}
    for cost in allocation.containers:
        c = cost.container
        name = {
            "namespace": c.namespace,
            "workload": f"{c.namespace}/{c.workload_kind}/{c.workload}",
            "node": c.node,
        }[key]
        totals = out.setdefault(name, Totals())
        for r, value in cost.hourly.items():
            totals.hourly[r] += value
        totals.cpu_request += c.cpu_request
        totals.memory_request += c.memory_request
        totals.cpu_usage += c.cpu_usage or 0.0
        totals.memory_usage += c.memory_usage or 0.0
        if recommendations:
            node_prices = (prices or {}).get(c.node, default)
            totals.savings_hourly += savings_hourly(cost, recommendations, node_prices)
    return out


def idle(allocation: Allocation) -> dict[str, float]:
    """Idle cost per hour by resource, summed over nodes."""
    out = dict.fromkeys(NODE_RESOURCES, 0.0)
    for node in allocation.nodes:
        for r, value in node.idle.items():
            out[r] += value
    return out


def node_hourly(allocation: Allocation) -> dict[str, float]:
    """Cost per hour of all nodes, by resource."""
    out = dict.fromkeys(NODE_RESOURCES, 0.0)
    for node in allocation.nodes:
        for r, value in node.hourly.items():
            out[r] += value
    return out


def nodes_by_name(nodes: Iterable[Node]) -> dict[str, NodePrices]:
    """Prices per node name."""
    return {n.name: n.prices for n in nodes}
