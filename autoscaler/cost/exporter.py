"""The cost metrics (:func:`cost_families`), computed from a snapshot each time Prometheus
scrapes.

Register :class:`CostCollector` on the service's registry with a function that returns the
current :class:`~autoscaler.cost.model.Snapshot` (e.g. :func:`snapshot_from_cluster` over the
cluster model and the kubelet collector's latest usage).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.registry import CollectorRegistry

from autoscaler.cost.model import NODE_RESOURCES, RESOURCES, Snapshot, allocate
from autoscaler.cost.pricing import default_prices, storage_gib_hour
from autoscaler.cost.settings import CostSettings
from runtime import names
from runtime.families import FamiliesCollector, Family

SnapshotProvider = Callable[[], Snapshot]


def cost_families(snapshot: Snapshot, settings: CostSettings) -> list[Family]:
    """Allocated, node and idle cost per hour, and the prices used."""
    allocation = allocate(snapshot, default_prices(settings), storage_gib_hour(settings))
    cur = settings.currency
    workload = Family(
        names.COST_HOURLY,
        "gauge",
        f"Cost per hour allocated to a workload ({cur}): max(request, usage) × price.",
    )
    totals: dict[tuple[str, str, str], dict[str, float]] = {}
    for cost in allocation.containers:
        c = cost.container
        into = totals.setdefault(
            (c.namespace, c.workload_kind, c.workload), dict.fromkeys(RESOURCES, 0.0)
        )
        for r, value in cost.hourly.items():
            into[r] += value
    for (namespace, kind, name), hourly in sorted(totals.items()):
        for r in RESOURCES:
            workload.add(
                hourly[r], namespace=namespace, workload_kind=kind, workload=name, resource=r
            )

    node = Family(names.COST_NODE_HOURLY, "gauge", f"Cost per hour of a node's capacity ({cur}).")
    idle = Family(
        names.COST_IDLE_HOURLY,
        "gauge",
        f"Node cost per hour that no workload is allocated ({cur}).",
    )
    for n in allocation.nodes:
        unused = n.idle
        for r in NODE_RESOURCES:
            node.add(n.hourly[r], node=n.node, resource=r)
            idle.add(unused[r], node=n.node, resource=r)

    price = Family(
        names.COST_NODE_PRICE,
        "gauge",
        f"Price per unit-hour on a node ({cur} per core, GiB or GPU), after overrides.",
    )
    for spec in snapshot.nodes:
        price.add(spec.prices.cpu_core_hour, node=spec.name, resource="cpu")
        price.add(spec.prices.memory_gib_hour, node=spec.name, resource="memory")
        price.add(spec.prices.gpu_hour, node=spec.name, resource="gpu")

    default = default_prices(settings)
    listed = Family(
        names.COST_PRICE, "gauge", f"On-demand price per unit-hour ({cur} per core, GiB or GPU)."
    )
    listed.add(default.cpu_core_hour, resource="cpu")
    listed.add(default.memory_gib_hour, resource="memory")
    listed.add(default.gpu_hour, resource="gpu")
    listed.add(storage_gib_hour(settings), resource="storage")
    return [workload, node, idle, price, listed]


class CostCollector(FamiliesCollector):
    """:func:`cost_families` of the provider's snapshot, at each scrape."""

    def __init__(self, snapshot: SnapshotProvider, settings: CostSettings) -> None:
        super().__init__(lambda: cost_families(snapshot(), settings))


def register_cost_metrics(
    registry: CollectorRegistry, snapshot: SnapshotProvider, settings: CostSettings
) -> CostCollector:
    """Add the cost metrics to ``registry``; returns the collector (to unregister it)."""
    collector = CostCollector(snapshot, settings)
    registry.register(collector)
    return collector
