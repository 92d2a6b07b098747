"""Nodes: which nodes are full, unhealthy or idle, and what runs on them?"""

from __future__ import annotations

import grafanalib.core as g

from dashboards.core import (
    CORES,
    GREEN_ORANGE_RED,
    Layout,
    Query,
    bargauge,
    dashboard,
    link,
    override,
    query_variable,
    state_timeline,
    table,
    timeseries,
    value_map,
)
from dashboards.queries import (
    CLUSTERS,
    NODE,
    active_requests,
    cadvisor,
    cadvisor_rate,
    label_values,
    sel,
    throttled_ratio,
)
from runtime import names, names_kubelet

UID = "foresight-nodes"


def _ratio(numerator: str, resource: str) -> str:
    allocatable = sel(names.NODE_ALLOCATABLE, NODE, resource=resource)
    return f"sum by (node) ({numerator}) / sum by (node) ({allocatable})"


CPU_USED = _ratio(sel(names.NODE_CPU_CORES, NODE), "cpu")
MEMORY_USED = _ratio(sel(names.NODE_MEMORY, NODE), "memory")
CPU_COMMITTED = _ratio(active_requests("cpu", NODE), "cpu")
MEMORY_COMMITTED = _ratio(active_requests("memory", NODE), "memory")
PODS = f"count by (node) ({sel(names.POD_CPU_CORES, NODE)})"


def _overview(layout: Layout) -> None:
    layout.row("Nodes")
    info = sel(names.NODE_INFO, NODE)
    unschedulable = sel(names.NODE_UNSCHEDULABLE, NODE)
    typed = f"max by (node, instance_type, zone) ({info})"
    layout.add(
        table(
            "Nodes",
            [
                Query(typed),
                *(
                    Query(f"{expr} * on (node) group_left (instance_type, zone) {typed}")
                    for expr in (
                        CPU_USED,
                        CPU_COMMITTED,
                        MEMORY_USED,
                        MEMORY_COMMITTED,
                        PODS,
                        f"max by (node) ({unschedulable})",
                    )
                ),
            ],
            "Every node with its type, how much of it is used and requested, and its pods. "
            "Click a node to select it.",
            columns={
                "node": "Node",
                "instance_type": "Instance type",
                "zone": "Zone",
                "Value #B": "CPU used",
                "Value #C": "CPU requested",
                "Value #D": "Memory used",
                "Value #E": "Memory requested",
                "Value #F": "Pods",
                "Value #G": "Cordoned",
            },
            hidden=("Time", "Value #A"),
            units={
                "CPU used": "percentunit",
                "CPU requested": "percentunit",
                "Memory used": "percentunit",
                "Memory requested": "percentunit",
            },
            overrides=[
                *(
                    override(
                        name,
                        thresholds={"mode": "absolute", "steps": _steps(GREEN_ORANGE_RED)},
                        custom__cellOptions={"type": "color-text"},
                    )
                    for name in ("CPU used", "CPU requested", "Memory used", "Memory requested")
                ),
                override(
                    "Cordoned", mappings=value_map({"0": ("no", "green"), "1": ("yes", "orange")})
                ),
                override(
                    "Node",
                    links=[link("Select ${__value.raw}", UID, "var-node=${__value.raw}")],
                ),
            ],
            sort_by="CPU requested",
        ),
        24,
        9,
    )


def _steps(steps: tuple[tuple[str, float | None], ...]) -> list[dict[str, object]]:
    return [{"color": c, "value": v} for c, v in steps]


def _usage(layout: Layout) -> None:
    layout.row("Usage")
    for title, expr, what in (
        ("CPU used / allocatable", CPU_USED, "CPU used"),
        ("Memory used / allocatable", MEMORY_USED, "Memory working set"),
        ("CPU requested / allocatable", CPU_COMMITTED, "CPU requested by pods"),
        ("Memory requested / allocatable", MEMORY_COMMITTED, "Memory requested by pods"),
    ):
        layout.add(
            timeseries(
                title,
                [Query(expr, "{{node}}")],
                "percentunit",
                f"{what} on each node as a share of its allocatable. The dashed line is 80 %.",
                thresholds=(("transparent", None), ("orange", 0.8)),
                threshold_style="dashed",
                fill=0,
                maximum=1,
            ),
            12,
            8,
        )
    layout.add(
        timeseries(
            "CPU used",
            [Query(sel(names.NODE_CPU_CORES, NODE), "{{node}}")],
            CORES,
            "Cores each node uses (kubelet /metrics/resource).",
            fill=0,
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Memory working set",
            [Query(sel(names.NODE_MEMORY, NODE), "{{node}}")],
            "bytes",
            "Working-set memory of each node: what the kubelet compares with eviction thresholds.",
            fill=0,
        ),
        12,
        8,
    )


def _conditions(layout: Layout) -> None:
    layout.row("Conditions and pods")
    conditions = names.NODE_CONDITION
    ready_true = sel(conditions, NODE, condition="Ready", status="true")
    ready_any = sel(conditions, NODE, condition="Ready")
    layout.add(
        state_timeline(
            "Ready",
            [Query(f"max by (node) ({ready_true}) or max by (node) (0 * {ready_any})", "{{node}}")],
            "When each node was Ready. Not ready for longer than the eviction timeout: its "
            "pods are moved.",
            value_map({"1": ("Ready", "green"), "0": ("Not ready", "red")}),
            thresholds=(("red", None), ("green", 1)),
        ),
        12,
        8,
    )
    pressure_true = sel(conditions, NODE, condition="~.*Pressure", status="true")
    pressure_any = sel(conditions, NODE, condition="~.*Pressure")
    layout.add(
        state_timeline(
            "Pressure conditions",
            [
                Query(
                    f"max by (node, condition) ({pressure_true}) "
                    f"or max by (node, condition) (0 * {pressure_any})",
                    "{{node}} {{condition}}",
                )
            ],
            "Memory, disk and PID pressure per node. Under memory pressure the kubelet evicts "
            "pods, BestEffort first.",
            value_map({"0": ("OK", "green"), "1": ("Pressure", "red")}),
        ),
        12,
        8,
    )
    layout.add(
        bargauge(
            "Pods / pod capacity",
            [
                Query(
                    f"{PODS} / sum by (node) "
                    f"({sel(names.NODE_ALLOCATABLE, NODE, resource='pods')})",
                    "{{node}}",
                )
            ],
            "percentunit",
            "Running pods on each node as a share of the pods it accepts (max-pods).",
            thresholds=GREEN_ORANGE_RED,
            maximum=1,
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Pods per node",
            [Query(PODS, "{{node}}")],
            "none",
            "Pods running on each node (those the kubelet reports usage for).",
            fill=0,
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Kubelet scrape duration",
            [Query(sel(names.SCRAPE_DURATION, 'target=~"$node"'), "{{target}}")],
            "s",
            "How long foresight took to read each kubelet's /metrics/resource. Slow or missing: "
            "that node's usage is stale.",
            fill=0,
        ),
        8,
        8,
    )
    cpu = sel(names.POD_CPU_CORES, NODE)
    memory = sel(names.POD_MEMORY, NODE)
    layout.add(
        table(
            "Pods on the selected nodes",
            [
                Query(f"sum by (node, namespace, pod) ({cpu})"),
                Query(f"sum by (node, namespace, pod) ({memory})"),
            ],
            "Pods running on the selected nodes, by CPU used.",
            columns={
                "node": "Node",
                "namespace": "Namespace",
                "pod": "Pod",
                "Value #A": "CPU used",
                "Value #B": "Memory used",
            },
            units={"CPU used": CORES, "Memory used": "bytes"},
            sort_by="CPU used",
        ),
        24,
        10,
    )


def _disk_and_network(layout: Layout) -> None:
    layout.row("Disk and network")
    keys = "node, filesystem"
    available = sel(names.NODE_FS_AVAILABLE, NODE)
    capacity = sel(names.NODE_FS_CAPACITY, NODE)
    layout.add(
        timeseries(
            "Filesystems used",
            [
                Query(
                    f"1 - max by ({keys}) ({available}) / max by ({keys}) ({capacity})",
                    "{{node}} {{filesystem}}",
                )
            ],
            "percentunit",
            "Share of each node's filesystem (nodefs: the kubelet's and pods' files; imagefs: "
            "container images) in use (kubelet /stats/summary). The kubelet reports "
            "DiskPressure and evicts pods when less than 10 % of nodefs or 15 % of imagefs is "
            "free; NodeFilesystemNearlyFull warns before.",
            thresholds=(("transparent", None), ("orange", 0.85), ("red", 0.9)),
            threshold_style="dashed",
            fill=0,
            maximum=1,
        ),
        12,
        8,
    )
    ephemeral = sel(names.POD_EPHEMERAL_STORAGE_USED, NODE)
    layout.add(
        timeseries(
            "Ephemeral storage used by pods",
            [Query(f"sum by (node) ({ephemeral})", "{{node}}")],
            "bytes",
            "Writable layers, logs and emptyDir volumes of the pods on each node.",
            fill=0,
        ),
        12,
        8,
    )
    received = cadvisor_rate(names_kubelet.NET_RX_BYTES, NODE)
    sent = cadvisor_rate(names_kubelet.NET_TX_BYTES, NODE)
    layout.add(
        timeseries(
            "Pod network traffic",
            [
                Query(f"sum by (node) ({received})", "{{node}} received"),
                Query(f"sum by (node) ({sent})", "{{node}} transmitted"),
            ],
            "Bps",
            "Bytes per second through the network interfaces of the pods on each node (cAdvisor).",
            fill=0,
        ),
        8,
        8,
    )
    reads = cadvisor_rate(names_kubelet.FS_READS_BYTES, NODE, container="!")
    writes = cadvisor_rate(names_kubelet.FS_WRITES_BYTES, NODE, container="!")
    layout.add(
        timeseries(
            "Pod disk I/O",
            [
                Query(f"sum by (node) ({reads})", "{{node}} read"),
                Query(f"sum by (node) ({writes})", "{{node}} written"),
            ],
            "Bps",
            "Bytes per second the containers on each node read and write (cAdvisor).",
            fill=0,
        ),
        8,
        8,
    )
    throttled = throttled_ratio(NODE, keys="cluster, node, namespace, pod, container")
    periods = cadvisor(names_kubelet.CFS_PERIODS, NODE)
    layout.add(
        timeseries(
            "Throttled containers",
            [
                Query(
                    f"count by (node) (({throttled}) > 0.25) or 0 * count by (node) ({periods})",
                    "{{node}}",
                )
            ],
            "none",
            "Containers on each node throttled in more than 25 % of their CFS periods "
            "(cAdvisor): their CPU limit is too low for their load.",
            fill=0,
        ),
        8,
        8,
    )


def build() -> g.Dashboard:
    """The nodes dashboard."""
    layout = Layout()
    _overview(layout)
    _usage(layout)
    _disk_and_network(layout)
    _conditions(layout)
    return dashboard(
        UID,
        "foresight / Nodes",
        "Which nodes are full, unhealthy or idle, and what runs on them.",
        [
            query_variable("cluster", "Cluster", CLUSTERS),
            query_variable("node", "Node", label_values(sel(names.NODE_INFO), "node")),
        ],
        layout,
    )
