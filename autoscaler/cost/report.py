"""Cost over a window: the allocation of every snapshot, averaged, grouped and projected."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from autoscaler.cost.model import (
    RESOURCES,
    Recommendation,
    RecommendationKey,
    Snapshot,
    Totals,
    allocate,
    group,
    nodes_by_name,
)
from autoscaler.cost.pricing import HOURS_PER_MONTH, default_prices, storage_gib_hour
from autoscaler.cost.settings import CostSettings

GroupBy = Literal["namespace", "workload", "node"]
IDLE = "__idle__"


@dataclass(frozen=True)
class Moment:
    """One snapshot and the recommendations known then."""

    snapshot: Snapshot
    recommendations: Mapping[RecommendationKey, Recommendation] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """Average hourly cost of one namespace, workload or node over the window."""

    name: str
    hourly: Mapping[str, float]
    window_hours: float
    idle_hourly: float = 0.0
    cpu_efficiency: float | None = None
    memory_efficiency: float | None = None
    savings_hourly: float = 0.0

    @property
    def total_hourly(self) -> float:
        return sum(self.hourly.values())

    @property
    def window_cost(self) -> float:
        return self.total_hourly * self.window_hours

    @property
    def monthly(self) -> float:
        return self.total_hourly * HOURS_PER_MONTH

    @property
    def savings_monthly(self) -> float:
        return self.savings_hourly * HOURS_PER_MONTH


@dataclass(frozen=True)
class Report:
    """Rows sorted by cost, most expensive first; ``idle`` and ``cluster`` are hourly."""

    by: GroupBy
    window_hours: float
    moments: int
    currency: str
    rows: tuple[Row, ...]
    cluster_hourly: float
    idle_hourly: float
    savings_hourly: float


def _ratio(used: float, requested: float) -> float | None:
    return used / requested if requested > 0 else None


def summarise(
    moments: Sequence[Moment], by: GroupBy, window_hours: float, settings: CostSettings
) -> Report:
    """Average the cost of each moment (absent = 0) and group it ``by``.

    For ``namespace`` and ``workload`` the unallocated node cost is a row named ``__idle__``,
    as in OpenCost, so that the rows add up to what the cluster costs.
    """
    default = default_prices(settings)
    storage = storage_gib_hour(settings)
    sums: dict[str, Totals] = {}
    node_sums: dict[str, Totals] = {}
    node_idle: dict[str, dict[str, float]] = {}
    for moment in moments:
        allocation = allocate(moment.snapshot, default, storage)
        prices = nodes_by_name(moment.snapshot.nodes)
        groups = group(allocation, by, default, moment.recommendations, prices)
        for name, totals in groups.items():
            _add(sums.setdefault(name, Totals()), totals)
        for node in allocation.nodes:
            hourly = node_sums.setdefault(node.node, Totals()).hourly
            idle = node_idle.setdefault(node.node, dict.fromkeys(RESOURCES, 0.0))
            for r, value in node.hourly.items():
                hourly[r] += value
            for r, value in node.idle.items():
                idle[r] += value
    n = max(1, len(moments))
    idle_by_resource = {r: sum(idle[r] for idle in node_idle.values()) / n for r in RESOURCES}
    idle_hourly = sum(idle_by_resource.values())
    if by == "node":
        rows = [
            _row(
                name,
                node_sums[name].hourly,
                sums.get(name, Totals()),
                n,
                window_hours,
                idle=sum(node_idle[name].values()) / n,
            )
            for name in node_sums
        ]
        # Containers on nodes the model no longer lists still cost something.
        rows += [
            _row(name, t.hourly, t, n, window_hours)
            for name, t in sums.items()
            if name not in node_sums
        ]
    else:
        rows = [_row(name, t.hourly, t, n, window_hours) for name, t in sums.items()]
    rows.sort(key=lambda r: (-r.total_hourly, r.name))
    if by != "node" and node_sums:
        rows.append(Row(IDLE, idle_by_resource, window_hours, idle_hourly=idle_hourly))
    allocated = sum(t.total_hourly for t in sums.values()) / n
    storage_hourly = sum(t.hourly["storage"] for t in sums.values()) / n
    nodes_hourly = sum(t.total_hourly for t in node_sums.values()) / n
    return Report(
        by=by,
        window_hours=window_hours,
        moments=len(moments),
        currency=settings.currency,
        rows=tuple(rows),
        cluster_hourly=nodes_hourly + storage_hourly if node_sums else allocated,
        idle_hourly=idle_hourly,
        savings_hourly=sum(t.savings_hourly for t in sums.values()) / n,
    )


def _add(into: Totals, more: Totals) -> None:
    for r, value in more.hourly.items():
        into.hourly[r] += value
    into.cpu_usage += more.cpu_usage
    into.cpu_request += more.cpu_request
    into.memory_usage += more.memory_usage
    into.memory_request += more.memory_request
    into.savings_hourly += more.savings_hourly


def _row(
    name: str,
    hourly: Mapping[str, float],
    usage: Totals,
    n: int,
    window_hours: float,
    idle: float = 0.0,
) -> Row:
    return Row(
        name,
        {r: v / n for r, v in hourly.items()},
        window_hours,
        idle_hourly=idle,
        cpu_efficiency=_ratio(usage.cpu_usage, usage.cpu_request),
        memory_efficiency=_ratio(usage.memory_usage, usage.memory_request),
        savings_hourly=usage.savings_hourly / n,
    )
