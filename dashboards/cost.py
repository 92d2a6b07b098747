"""Cost: what the cluster costs, who spends it, how much idles, and what could be saved.

Reads the ``foresight_cost_*`` metrics of foresight's cost model (OpenCost's allocation: each
workload pays max(request, usage) per resource; idle = node cost − allocated).
"""

from __future__ import annotations

import grafanalib.core as g

from dashboards.core import (
    Layout,
    Query,
    bargauge,
    dashboard,
    link,
    override,
    piechart,
    query_variable,
    stat,
    table,
    timeseries,
)
from dashboards.queries import (
    CLUSTERS,
    HOURS_PER_MONTH,
    NAMESPACE,
    WORKLOAD,
    active_requests,
    average_hourly,
    by_workload,
    label_values,
    monthly_savings,
    sel,
)
from runtime import names

UID = "foresight-cost"
M = HOURS_PER_MONTH
KIND = "namespace, workload_kind, workload"


def _queries() -> dict[str, str]:
    nodes = sel(names.COST_NODE_HOURLY)
    storage = sel(names.COST_HOURLY, resource="storage")
    idle = sel(names.COST_IDLE_HOURLY)
    savings = " + ".join(
        f"(sum({monthly_savings(r, NAMESPACE)}) or vector(0))" for r in ("cpu", "memory")
    )
    return {
        "cluster": f"(sum({nodes}) + (sum({storage}) or vector(0))) * {M}",
        "idle": f"sum({idle}) * {M}",
        "idle_share": f"sum({idle}) / sum({nodes})",
        "selected": f"sum({sel(names.COST_HOURLY, NAMESPACE, WORKLOAD)}) * {M}",
        "savings": savings,
        "trend": (
            f"{average_hourly(names.COST_NODE_HOURLY, '1d')} "
            f"/ {average_hourly(names.COST_NODE_HOURLY, '7d')} - 1"
        ),
    }


def _summary(layout: Layout, money: str) -> None:
    layout.row("Summary")
    q = _queries()
    for key, title, unit, description, thresholds in (
        (
            "cluster",
            "Cluster cost / month",
            money,
            "What the nodes (and requested storage) cost at this hour's rate, over a "
            f"{M}-hour month.",
            (("blue", None),),
        ),
        (
            "idle",
            "Idle cost / month",
            money,
            "Node capacity that no workload requests or uses, priced: the cost of headroom "
            "and bin-packing.",
            (("blue", None),),
        ),
        (
            "idle_share",
            "Idle share",
            "percentunit",
            "Idle cost as a share of node cost. Above 30 %: consolidate nodes or use smaller ones.",
            (("green", None), ("orange", 0.3), ("red", 0.5)),
        ),
        (
            "selected",
            "Selected workloads / month",
            money,
            "Cost allocated to the selected namespaces and workloads.",
            (("blue", None),),
        ),
        (
            "savings",
            "Savings if recommendations applied / month",
            money,
            "Requests minus foresight's vertical recommendations, for every container of "
            "every PredictiveAutoscaler target, at on-demand prices. Negative: the "
            "recommendations ask for more than today's requests.",
            (("text", None), ("green", 0.01)),
        ),
        (
            "trend",
            "Last day vs 7-day average",
            "percentunit",
            "Average hourly cluster cost over the last 24 hours against the last 7 days.",
            (("green", None), ("orange", 0.1), ("red", 0.25)),
        ),
    ):
        layout.add(stat(title, [Query(q[key])], unit, description, thresholds, decimals=2), 4, 5)


def _breakdown(layout: Layout, money: str) -> None:
    layout.row("Breakdown")
    allocated = sel(names.COST_HOURLY, NAMESPACE)
    idle = sel(names.COST_IDLE_HOURLY)
    layout.add(
        piechart(
            "Monthly cost by namespace",
            [
                Query(
                    f"sum by (namespace) ({allocated}) * {M} "
                    f'or label_replace(sum({idle}) * {M}, "namespace", "__idle__", "", "")',
                    "{{namespace}}",
                )
            ],
            money,
            "Allocated cost per namespace, with the unallocated node cost as __idle__.",
        ),
        8,
        8,
    )
    layout.add(
        piechart(
            "Monthly cost by resource",
            [
                Query(
                    f"sum by (resource) ({sel(names.COST_HOURLY, NAMESPACE, WORKLOAD)}) * {M}",
                    "{{resource}}",
                )
            ],
            money,
            "Allocated cost of the selected workloads by resource: CPU, memory, GPU and "
            "requested ephemeral storage.",
        ),
        8,
        8,
    )
    nodes = sel(names.COST_NODE_HOURLY)
    layout.add(
        timeseries(
            "Daily cost: run rate vs 7-day average",
            [
                Query(f"sum({nodes}) * 24", "daily run rate"),
                Query(f"{average_hourly(names.COST_NODE_HOURLY, '7d')} * 24", "7-day average"),
            ],
            money,
            "Node cost per day at each moment's rate, against its average over the last week.",
            fill=0,
            overrides=[
                override("7-day average", custom__lineStyle={"fill": "dash", "dash": [10, 10]})
            ],
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Hourly cost by namespace",
            [
                Query(f"sum by (namespace) ({allocated})", "{{namespace}}"),
                Query(f"sum({idle})", "__idle__"),
            ],
            money,
            "Cost per hour allocated to each namespace, stacked with idle: the top of the "
            "stack is what the cluster costs per hour.",
            stack=True,
            fill=40,
            overrides=[override("__idle__", color={"mode": "fixed", "fixedColor": "text"})],
        ),
        24,
        8,
    )


def _workloads(layout: Layout, money: str) -> None:
    layout.row("Workloads and efficiency")
    scope = (names.COST_HOURLY, NAMESPACE, WORKLOAD)
    cost = sel(*scope)
    per_resource = [
        Query(f"sum by ({KIND}) ({sel(*scope, resource=r)}) * {M}")
        for r in ("cpu", "memory", "gpu", "storage")
    ]
    layout.add(
        table(
            "Cost by workload",
            [
                Query(f"sum by ({KIND}) ({cost}) * {M}"),
                *per_resource,
                *(
                    Query(
                        f"sum by ({KIND}) ({sel(usage, NAMESPACE, WORKLOAD)}) "
                        f"/ {by_workload(active_requests(r, NAMESPACE), 'sum', KIND)}"
                    )
                    for r, usage in (
                        ("cpu", names.WORKLOAD_CPU_CORES),
                        ("memory", names.WORKLOAD_MEMORY),
                    )
                ),
            ],
            "Monthly cost per workload at this hour's rate, by resource, and efficiency "
            "(usage / requests): below 50 %, requests could shrink.",
            columns={
                "namespace": "Namespace",
                "workload_kind": "Kind",
                "workload": "Workload",
                "Value #A": "Monthly",
                "Value #B": "CPU",
                "Value #C": "Memory",
                "Value #D": "GPU",
                "Value #E": "Storage",
                "Value #F": "CPU efficiency",
                "Value #G": "Memory efficiency",
            },
            units={
                **{name: money for name in ("Monthly", "CPU", "Memory", "GPU", "Storage")},
                "CPU efficiency": "percentunit",
                "Memory efficiency": "percentunit",
            },
            overrides=[
                *(
                    override(
                        name,
                        thresholds={
                            "mode": "absolute",
                            "steps": [
                                {"color": "red", "value": None},
                                {"color": "orange", "value": 0.3},
                                {"color": "green", "value": 0.6},
                            ],
                        },
                        custom__cellOptions={"type": "color-text"},
                    )
                    for name in ("CPU efficiency", "Memory efficiency")
                ),
                override(
                    "Workload",
                    links=[
                        link(
                            "Workload ${__value.raw}",
                            "foresight-workloads",
                            "var-namespace=${__data.fields.Namespace}&var-workload=${__value.raw}",
                        )
                    ],
                ),
            ],
            sort_by="Monthly",
        ),
        24,
        9,
    )
    for resource, usage, what in (
        ("cpu", names.POD_CPU_CORES, "CPU"),
        ("memory", names.POD_MEMORY, "Memory"),
    ):
        layout.add(
            timeseries(
                f"{what} efficiency by namespace",
                [
                    Query(
                        f"sum by (namespace) ({sel(usage, NAMESPACE)}) "
                        f"/ sum by (namespace) ({active_requests(resource, NAMESPACE)})",
                        "{{namespace}}",
                    )
                ],
                "percentunit",
                f"{what} used / {what.lower()} requested. Above 100 %: pods use more than they "
                "reserve and pay for the excess (max of request and usage).",
                fill=0,
            ),
            12,
            8,
        )
    layout.add(
        table(
            "Projected savings from vertical recommendations",
            [Query(monthly_savings("cpu", NAMESPACE)), Query(monthly_savings("memory", NAMESPACE))],
            "Per autoscaler and container: what setting the recommended requests on every pod "
            "would save each month, at on-demand prices.",
            columns={
                "namespace": "Namespace",
                "autoscaler": "Autoscaler",
                "container": "Container",
                "Value #A": "CPU / month",
                "Value #B": "Memory / month",
            },
            hidden=("Time", "cluster"),
            units={"CPU / month": money, "Memory / month": money},
            sort_by="CPU / month",
        ),
        24,
        7,
    )


def _nodes(layout: Layout, money: str) -> None:
    layout.row("Nodes")
    info = f"max by (node, instance_type) ({sel(names.NODE_INFO)})"

    def typed(expr: str) -> str:
        return f"{expr} * on (node) group_left (instance_type) {info}"

    nodes = sel(names.COST_NODE_HOURLY)
    idle = sel(names.COST_IDLE_HOURLY)
    price = sel(names.COST_NODE_PRICE, resource="cpu")
    layout.add(
        table(
            "Cost by node",
            [
                Query(typed(f"sum by (node) ({nodes}) * {M}")),
                Query(typed(f"sum by (node) ({idle}) * {M}")),
                Query(typed(f"sum by (node) ({idle}) / sum by (node) ({nodes})")),
                Query(typed(f"max by (node) ({price})")),
            ],
            "Monthly cost of each node, the part of it idle, and its CPU price (spot and "
            "per-instance-type prices come from the cost settings).",
            columns={
                "node": "Node",
                "instance_type": "Instance type",
                "Value #A": "Monthly",
                "Value #B": "Idle / month",
                "Value #C": "Idle share",
                "Value #D": "Price per core-hour",
            },
            units={
                "Monthly": money,
                "Idle / month": money,
                "Idle share": "percentunit",
                "Price per core-hour": money,
            },
            overrides=[
                override(
                    "Node",
                    links=[
                        link("Node ${__value.raw}", "foresight-nodes", "var-node=${__value.raw}")
                    ],
                )
            ],
            sort_by="Idle / month",
        ),
        14,
        8,
    )
    layout.add(
        bargauge(
            "Idle cost by node / month",
            [Query(f"sum by (node) ({idle}) * {M}", "{{node}}")],
            money,
            "Where the unallocated capacity sits.",
            thresholds=(("blue", None),),
        ),
        10,
        8,
    )


def build(currency: str = "USD") -> g.Dashboard:
    """The cost dashboard, with amounts in ``currency`` (ISO 4217)."""
    money = f"currency{currency}"
    layout = Layout()
    _summary(layout, money)
    _breakdown(layout, money)
    _workloads(layout, money)
    _nodes(layout, money)
    return dashboard(
        UID,
        "foresight / Cost",
        "What the cluster costs, who spends it, how much idles, and what could be saved.",
        [
            query_variable("cluster", "Cluster", CLUSTERS),
            query_variable(
                "namespace",
                "Namespace",
                label_values(sel(names.COST_HOURLY), "namespace"),
            ),
            query_variable(
                "workload",
                "Workload",
                label_values(sel(names.COST_HOURLY, NAMESPACE), "workload"),
            ),
        ],
        layout,
        time_from="now-7d",
    )
