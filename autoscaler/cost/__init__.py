"""The cost model: OpenCost-style allocation, its Prometheus metrics and its reports.

Pure maths in :mod:`~autoscaler.cost.model` and :mod:`~autoscaler.cost.report`; snapshots
from the cluster model or collected series in :mod:`~autoscaler.cost.inputs`; the metric
families and their scrape-time collector in :mod:`~autoscaler.cost.exporter`; series sources
for ``foresight cost`` in :mod:`~autoscaler.cost.sources`.
"""

from autoscaler.cost.exporter import CostCollector, cost_families, register_cost_metrics
from autoscaler.cost.inputs import snapshot_from_cluster, snapshot_from_series
from autoscaler.cost.model import Allocation, Container, Node, Snapshot, allocate
from autoscaler.cost.pricing import HOURS_PER_MONTH, NodePrices, node_prices
from autoscaler.cost.report import Report, Row, summarise
from autoscaler.cost.settings import CostSettings, NodePriceOverride

__all__ = [
    "HOURS_PER_MONTH",
    "Allocation",
    "Container",
    "CostCollector",
    "CostSettings",
    "Node",
    "NodePriceOverride",
    "NodePrices",
    "Report",
    "Row",
    "Snapshot",
    "allocate",
    "cost_families",
    "node_prices",
    "register_cost_metrics",
    "snapshot_from_cluster",
    "snapshot_from_series",
    "summarise",
]
