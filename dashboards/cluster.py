"""Cluster overview: is the cluster healthy, how full is it, and who uses it?"""

from __future__ import annotations

import grafanalib.core as g

from dashboards.core import (
    ANY_IS_BAD,
    ANY_IS_WARNING,
    CORES,
    Layout,
    Query,
    bargauge,
    dashboard,
    gauge,
    link,
    override,
    piechart,
    query_variable,
    stat,
    table,
    timeseries,
)
from dashboards.queries import CLUSTERS, NAMESPACE, active_requests, label_values, sel
from runtime import names

UID = "foresight-cluster"

_USAGE = {
    "cpu": names.NODE_CPU_CORES,
    "memory": names.NODE_MEMORY,
}
_WHAT = {"cpu": "CPU", "memory": "Memory"}
_NOUN = {"cpu": "CPU", "memory": "memory"}
_UNIT = {"cpu": CORES, "memory": "bytes"}
DASHED = {"fill": "dash", "dash": [10, 10]}


def _health(layout: Layout) -> None:
    layout.row("Health")
    ready = names.NODE_CONDITION
    restarts = sel(names.CONTAINER_RESTARTS, NAMESPACE)
    oom = sel(names.CONTAINER_LAST_TERMINATED, NAMESPACE, reason="OOMKilled")
    nodes = [link("Nodes", "foresight-nodes")]
    for title, expr, description, thresholds, links in (
        (
            "Nodes ready",
            f"sum({sel(ready, condition='Ready', status='true')}) or vector(0)",
            "Nodes whose Ready condition is True.",
            (("red", None), ("green", 1)),
            nodes,
        ),
        (
            "Nodes not ready",
            f"count({sel(ready, condition='Ready', status='!true')}) or vector(0)",
            "Nodes whose Ready condition is False or Unknown: their pods are evicted after the "
            "eviction timeout.",
            ANY_IS_BAD,
            nodes,
        ),
        (
            "Pods not running",
            f"sum({sel(names.POD_PHASE, NAMESPACE, phase='~Pending|Failed|Unknown')}) or vector(0)",
            "Pods Pending (not scheduled, or starting), Failed or Unknown.",
            ANY_IS_WARNING,
            [link("Workloads", "foresight-workloads")],
        ),
        (
            "Container restarts, last hour",
            f"round(sum(increase({restarts}[1h]))) or vector(0)",
            "Restarts of all containers over the last hour: crashes, failed liveness probes, "
            "OOM kills.",
            (("green", None), ("orange", 1), ("red", 10)),
            [],
        ),
        (
            "Containers last OOM-killed",
            f"count({oom}) or vector(0)",
            "Containers whose last termination was an OOM kill: their memory limit is below "
            "what they use. See the table below.",
            ANY_IS_BAD,
            [],
        ),
        (
            "Firing alerts",
            f"sum({sel(names.ALERTS, state='firing')}) or vector(0)",
            "Alerts that foresight's rules are firing now.",
            ANY_IS_BAD,
            [link("Alerts", "foresight-alerts")],
        ),
    ):
        layout.add(stat(title, [Query(expr)], "none", description, thresholds, links=links), 4, 4)


def _capacity(layout: Layout) -> None:
    layout.row("Capacity")
    for resource in ("cpu", "memory"):
        allocatable = sel(names.NODE_ALLOCATABLE, resource=resource)
        what = _WHAT[resource]
        layout.add(
            gauge(
                f"{what} committed",
                Query(f"sum({active_requests(resource)}) / sum({allocatable})"),
                "percentunit",
                f"{what} requested by scheduled, unfinished pods as a share of what the nodes "
                "can allocate. Above 80 % the scheduler may find no room for new or bigger pods.",
            ),
            3,
            6,
        )
    for resource in ("cpu", "memory"):
        allocatable = sel(names.NODE_ALLOCATABLE, resource=resource)
        what = _WHAT[resource]
        layout.add(
            gauge(
                f"{what} used",
                Query(f"sum({sel(_USAGE[resource])}) / sum({allocatable})"),
                "percentunit",
                f"{what} the nodes use now as a share of what they can allocate.",
            ),
            3,
            6,
        )
    layout.add(
        piechart(
            "Pods by phase",
            [Query(f"sum by (phase) ({sel(names.POD_PHASE, NAMESPACE)})", "{{phase}}")],
            "none",
            "Pods in each phase now.",
        ),
        12,
        6,
    )
    for resource in ("cpu", "memory"):
        what = _WHAT[resource]
        allocatable = sel(names.NODE_ALLOCATABLE, resource=resource)
        layout.add(
            timeseries(
                f"{what}: used, requested, allocatable",
                [
                    Query(f"sum({sel(_USAGE[resource])})", "used"),
                    Query(f"sum({active_requests(resource)})", "requested"),
                    Query(f"sum({allocatable})", "allocatable"),
                ],
                _UNIT[resource],
                f"{what} the nodes use, what pods reserve, and what the nodes offer. Requests "
                "near allocatable: new pods stay Pending. Usage far below requests: requests "
                "are oversized (see the Cost dashboard).",
                overrides=[
                    override("allocatable", custom__lineStyle=DASHED, custom__fillOpacity=0)
                ],
            ),
            12,
            8,
        )


def _namespaces(layout: Layout) -> None:
    layout.row("Namespaces")
    for resource, metric in (
        ("cpu", names.POD_CPU_CORES),
        ("memory", names.POD_MEMORY),
    ):
        layout.add(
            bargauge(
                f"Top namespaces by {_NOUN[resource]} used",
                [
                    Query(
                        f"topk(10, sum by (namespace) ({sel(metric, NAMESPACE)}))",
                        "{{namespace}}",
                    )
                ],
                _UNIT[resource],
                f"The ten namespaces using the most {_NOUN[resource]} now.",
            ),
            8,
            8,
        )
    restarts = sel(names.CONTAINER_RESTARTS, NAMESPACE)
    layout.add(
        timeseries(
            "Container restarts by namespace",
            [
                Query(
                    f"sum by (namespace) (increase({restarts}[$__rate_interval]))",
                    "{{namespace}}",
                )
            ],
            "none",
            "Restarts per interval. A steady stream is a crash loop.",
            bars=True,
            fill=80,
            stack=True,
        ),
        8,
        8,
    )
    layout.add(
        table(
            "Namespaces",
            [
                Query(f"sum by (namespace) ({sel(names.POD_CPU_CORES, NAMESPACE)})"),
                Query(f"sum by (namespace) ({active_requests('cpu', NAMESPACE)})"),
                Query(f"sum by (namespace) ({sel(names.POD_MEMORY, NAMESPACE)})"),
                Query(f"sum by (namespace) ({active_requests('memory', NAMESPACE)})"),
                Query(f"sum by (namespace) ({sel(names.POD_PHASE, NAMESPACE, phase='Running')})"),
                Query(f"round(sum by (namespace) (increase({restarts}[1h])))"),
            ],
            "Usage and requests per namespace. Click a namespace for its workloads.",
            columns={
                "namespace": "Namespace",
                "Value #A": "CPU used",
                "Value #B": "CPU requested",
                "Value #C": "Memory used",
                "Value #D": "Memory requested",
                "Value #E": "Pods running",
                "Value #F": "Restarts (1 h)",
            },
            units={
                "CPU used": CORES,
                "CPU requested": CORES,
                "Memory used": "bytes",
                "Memory requested": "bytes",
            },
            overrides=[
                override(
                    "Namespace",
                    links=[
                        link(
                            "Workloads in ${__value.raw}",
                            "foresight-workloads",
                            "var-namespace=${__value.raw}",
                        )
                    ],
                )
            ],
            sort_by="CPU used",
        ),
        24,
        9,
    )


def _problems(layout: Layout) -> None:
    layout.row("Problems")
    oom = sel(names.CONTAINER_LAST_TERMINATED, NAMESPACE, reason="OOMKilled")
    layout.add(
        table(
            "Containers last OOM-killed",
            [Query(f"max by (namespace, pod, container, node) ({oom})")],
            "Containers whose last termination was an OOM kill, and where they ran. Raise "
            "their memory limit, or let foresight's vertical scaling do it.",
            columns={
                "namespace": "Namespace",
                "pod": "Pod",
                "container": "Container",
                "node": "Node",
            },
            hidden=("Time", "Value"),
        ),
        12,
        8,
    )
    firing = sel(names.ALERTS, state="firing")
    layout.add(
        timeseries(
            "Firing alerts by severity",
            [Query(f"sum by (severity) ({firing})", "{{severity}}")],
            "none",
            "Alerts firing over time, by severity.",
            stack=True,
            fill=40,
            overrides=[
                override("critical", color={"mode": "fixed", "fixedColor": "red"}),
                override("warning", color={"mode": "fixed", "fixedColor": "orange"}),
            ],
        ),
        12,
        8,
    )


def build() -> g.Dashboard:
    """The cluster overview dashboard."""
    layout = Layout()
    _health(layout)
    _capacity(layout)
    _namespaces(layout)
    _problems(layout)
    return dashboard(
        UID,
        "foresight / Cluster overview",
        "Is the cluster healthy, how full is it, and who uses it.",
        [
            query_variable("cluster", "Cluster", CLUSTERS),
            query_variable(
                "namespace",
                "Namespace",
                label_values(sel(names.POD_PHASE), "namespace"),
            ),
        ],
        layout,
    )
