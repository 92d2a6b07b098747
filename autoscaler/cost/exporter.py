"""``foresight_cost_*`` metrics, computed from a snapshot each time Prometheus scrapes.

Register :class:`CostCollector` on the service's registry with a function that returns the
current :class:`~autoscaler.cost.model.Snapshot` (e.g. :func:`snapshot_from_cluster` over the
cluster model and the kubelet collector's latest usage).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from autoscaler.cost.model import NODE_RESOURCES, RESOURCES, Snapshot, allocate
from autoscaler.cost.pricing import default_prices, storage_gib_hour
from autoscaler.cost.settings import CostSettings

SnapshotProvider = Callable[[], Snapshot]


class CostCollector(Collector):
    """Allocated, node and idle cost per hour, and the prices used."""

    def __init__(self, snapshot: SnapshotProvider, settings: CostSettings) -> None:
        self._snapshot = snapshot
        self._settings = settings

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        allocation = allocate(
            snapshot, default_prices(self._settings), storage_gib_hour(self._settings)
        )
        cur = self._settings.currency
        workload = GaugeMetricFamily(
            "foresight_cost_hourly",
            f"Cost per hour allocated to a workload ({cur}): max(request, usage) × price.",
            labels=["namespace", "workload_kind", "workload", "resource"],
        )
        totals: dict[tuple[str, str, str], dict[str, float]] = {}
        for cost in allocation.containers:
            c = cost.container
            into = totals.setdefault(
                (c.namespace, c.workload_kind, c.workload), dict.fromkeys(RESOURCES, 0.0)
            )
            for r, value in cost.hourly.items():
                into[r] += value
        for key, hourly in sorted(totals.items()):
            for r in RESOURCES:
                workload.add_metric([*key, r], hourly[r])
        yield workload

        node = GaugeMetricFamily(
            "foresight_cost_node_hourly",
            f"Cost per hour of a node's capacity ({cur}).",
            labels=["node", "resource"],
        )
        idle = GaugeMetricFamily(
            "foresight_cost_idle_hourly",
            f"Node cost per hour that no workload is allocated ({cur}).",
            labels=["node", "resource"],
        )
        for n in allocation.nodes:
            unused = n.idle
            for r in NODE_RESOURCES:
                node.add_metric([n.node, r], n.hourly[r])
                idle.add_metric([n.node, r], unused[r])
        yield node
        yield idle

        price = GaugeMetricFamily(
            "foresight_cost_node_price",
            f"Price per unit-hour on a node ({cur} per core, GiB or GPU), after overrides.",
            labels=["node", "resource"],
        )
        for spec in snapshot.nodes:
            price.add_metric([spec.name, "cpu"], spec.prices.cpu_core_hour)
            price.add_metric([spec.name, "memory"], spec.prices.memory_gib_hour)
            price.add_metric([spec.name, "gpu"], spec.prices.gpu_hour)
        yield price

        default = default_prices(self._settings)
        listed = GaugeMetricFamily(
            "foresight_cost_price",
            f"On-demand price per unit-hour ({cur} per core, GiB or GPU).",
            labels=["resource"],
        )
        listed.add_metric(["cpu"], default.cpu_core_hour)
        listed.add_metric(["memory"], default.memory_gib_hour)
        listed.add_metric(["gpu"], default.gpu_hour)
        listed.add_metric(["storage"], storage_gib_hour(self._settings))
        yield listed


def register_cost_metrics(
    registry: CollectorRegistry, snapshot: SnapshotProvider, settings: CostSettings
) -> CostCollector:
    """Add the cost metrics to ``registry``; returns the collector (to unregister it)."""
    collector = CostCollector(snapshot, settings)
    registry.register(collector)
    return collector
