"""Workloads: is each workload sized right, healthy, and at its desired replicas?"""

from __future__ import annotations

import grafanalib.core as g

from dashboards.core import (
    ANY_IS_BAD,
    CORES,
    Layout,
    Query,
    dashboard,
    link,
    override,
    query_variable,
    stat,
    table,
    timeseries,
    value_map,
)
from dashboards.queries import (
    CLUSTERS,
    NAMESPACE,
    WORKLOAD,
    active_requests,
    by_workload,
    cadvisor_rate,
    label_values,
    sel,
    throttled_ratio,
)
from runtime import names, names_kubelet

UID = "foresight-workloads"
KIND = "namespace, workload_kind, workload"
DASHED = {"fill": "dash", "dash": [10, 10]}
_USAGE = {
    "cpu": names.CONTAINER_CPU_CORES,
    "memory": names.CONTAINER_MEMORY,
}
_WORKLOAD_USAGE = {
    "cpu": names.WORKLOAD_CPU_CORES,
    "memory": names.WORKLOAD_MEMORY,
}
_UNIT = {"cpu": CORES, "memory": "bytes"}


def _limits(resource: str) -> str:
    return sel(names.CONTAINER_LIMITS, NAMESPACE, resource=resource)


def _table(layout: Layout) -> None:
    layout.row("Workloads")
    w = (NAMESPACE, WORKLOAD)
    restarts = sel(names.CONTAINER_RESTARTS, NAMESPACE)
    layout.add(
        table(
            "Workloads",
            [
                Query(f"max by ({KIND}) ({sel(names.WORKLOAD_REPLICAS_DESIRED, *w)})"),
                Query(f"max by ({KIND}) ({sel(names.WORKLOAD_REPLICAS_READY, *w)})"),
                Query(f"max by ({KIND}) ({sel(_WORKLOAD_USAGE['cpu'], *w)})"),
                Query(by_workload(active_requests("cpu", NAMESPACE), "sum", KIND)),
                Query(f"max by ({KIND}) ({sel(_WORKLOAD_USAGE['memory'], *w)})"),
                Query(by_workload(active_requests("memory", NAMESPACE), "sum", KIND)),
                Query(f"round({by_workload(f'increase({restarts}[1h])', 'sum', KIND)})"),
            ],
            "Replicas, usage against requests and restarts of each workload. A CPU or memory "
            "efficiency far below 100 % is money reserved and not used.",
            columns={
                "namespace": "Namespace",
                "workload_kind": "Kind",
                "workload": "Workload",
                "Value #A": "Desired",
                "Value #B": "Ready",
                "Value #C": "CPU used",
                "Value #D": "CPU requested",
                "Value #E": "Memory used",
                "Value #F": "Memory requested",
                "Value #G": "Restarts (1 h)",
            },
            units={
                "CPU used": CORES,
                "CPU requested": CORES,
                "Memory used": "bytes",
                "Memory requested": "bytes",
            },
            overrides=[
                override(
                    "Workload",
                    links=[
                        link(
                            "Select ${__value.raw}",
                            UID,
                            "var-namespace=${__data.fields.Namespace}&var-workload=${__value.raw}",
                        )
                    ],
                )
            ],
            sort_by="CPU used",
        ),
        24,
        9,
    )


def _resources(layout: Layout) -> None:
    layout.row("Resources")
    w = (NAMESPACE, WORKLOAD)
    running = sel(names.POD_PHASE, NAMESPACE, phase="Running")
    for resource, what in (("cpu", "CPU"), ("memory", "Memory")):
        layout.add(
            timeseries(
                f"{what}: used, requested, limit",
                [
                    Query(
                        f"sum by (namespace, workload) ({sel(_WORKLOAD_USAGE[resource], *w)})",
                        "{{workload}} used",
                    ),
                    Query(
                        by_workload(active_requests(resource, NAMESPACE)), "{{workload}} requested"
                    ),
                    Query(
                        by_workload(
                            f"({_limits(resource)} and on (cluster, namespace, pod) {running})"
                        ),
                        "{{workload}} limit",
                    ),
                ],
                _UNIT[resource],
                f"{what} of all pods of each selected workload: used, requested (reserved on "
                "nodes, what you pay for) and the limit.",
                overrides=[
                    override(
                        ".* limit", regex=True, custom__lineStyle=DASHED, custom__fillOpacity=0
                    ),
                ],
            ),
            12,
            8,
        )
    layout.add(
        timeseries(
            "CPU throttling",
            [Query(by_workload(throttled_ratio(NAMESPACE), "max"), "{{workload}}")],
            "percentunit",
            "Most throttled container of each workload: the share of its CFS periods in which "
            "it hit its CPU limit and waited (cAdvisor). Above 25 % latency suffers "
            "(CPUThrottlingHigh); the vertical policy counts throttled time as CPU needed.",
            thresholds=(("transparent", None), ("orange", 0.25), ("red", 0.5)),
            threshold_style="dashed",
            fill=0,
        ),
        12,
        8,
    )
    usage = sel(_USAGE["memory"], NAMESPACE)
    limit = f"max by (cluster, namespace, pod, container) ({_limits('memory')})"
    ratio = f"{usage} / on (cluster, namespace, pod, container) group_left () {limit}"
    layout.add(
        timeseries(
            "Memory used / limit (OOM risk)",
            [Query(by_workload(ratio, "max"), "{{workload}}")],
            "percentunit",
            "Fullest container of each workload against its memory limit. At 100 % the kernel "
            "OOM-kills it.",
            thresholds=(("transparent", None), ("orange", 0.8), ("red", 0.95)),
            threshold_style="dashed",
            fill=0,
        ),
        12,
        8,
    )


def _traffic(layout: Layout) -> None:
    layout.row("Network, disk and volumes")
    received = cadvisor_rate(names_kubelet.NET_RX_BYTES, NAMESPACE)
    sent = cadvisor_rate(names_kubelet.NET_TX_BYTES, NAMESPACE)
    layout.add(
        timeseries(
            "Network: received and transmitted",
            [
                Query(by_workload(received), "{{workload}} received"),
                Query(by_workload(sent), "{{workload}} transmitted"),
            ],
            "Bps",
            "Bytes per second through the network interfaces of each workload's pods "
            "(cAdvisor, pod sandboxes).",
            fill=0,
        ),
        12,
        8,
    )
    errors = " + ".join(
        f"sum by (cluster, namespace, pod) ({cadvisor_rate(name, NAMESPACE)})"
        for name in (
            names_kubelet.NET_RX_ERRORS,
            names_kubelet.NET_TX_ERRORS,
            names_kubelet.NET_RX_DROPPED,
            names_kubelet.NET_TX_DROPPED,
        )
    )
    layout.add(
        timeseries(
            "Network errors and drops",
            [Query(by_workload(f"({errors})"), "{{workload}}")],
            "pps",
            "Packets per second received or sent with errors, or dropped, by each workload's "
            "pods. Anything above zero is worth a look.",
            thresholds=(("transparent", None), ("red", 0.001)),
            threshold_style="dashed",
            fill=0,
        ),
        12,
        8,
    )
    reads = cadvisor_rate(names_kubelet.FS_READS_BYTES, NAMESPACE, container="!")
    writes = cadvisor_rate(names_kubelet.FS_WRITES_BYTES, NAMESPACE, container="!")
    layout.add(
        timeseries(
            "Disk I/O",
            [
                Query(by_workload(reads), "{{workload}} read"),
                Query(by_workload(writes), "{{workload}} written"),
            ],
            "Bps",
            "Bytes per second each workload's containers read from and write to disk (cAdvisor).",
            fill=0,
        ),
        8,
        8,
    )
    ephemeral = sel(names.POD_EPHEMERAL_STORAGE_USED, NAMESPACE)
    layout.add(
        timeseries(
            "Ephemeral storage used",
            [Query(by_workload(ephemeral), "{{workload}}")],
            "bytes",
            "Writable layers, logs and emptyDir volumes of each workload's pods on their "
            "nodes' filesystems (kubelet /stats/summary). Past a pod's ephemeral-storage limit "
            "the kubelet evicts it.",
            fill=0,
        ),
        8,
        8,
    )
    used = sel(names_kubelet.VOLUME_USED, NAMESPACE)
    capacity = sel(names_kubelet.VOLUME_CAPACITY, NAMESPACE)
    keys = "cluster, namespace, persistentvolumeclaim"
    layout.add(
        timeseries(
            "Volumes: used / capacity",
            [
                Query(
                    f"max by ({keys}) ({used}) / max by ({keys}) ({capacity})",
                    "{{namespace}}/{{persistentvolumeclaim}}",
                )
            ],
            "percentunit",
            "How full each PersistentVolumeClaim of the selected namespaces is (the kubelet's "
            "kubelet_volume_stats_*). PersistentVolumeFillingUp fires when one would fill "
            "within 4 hours.",
            thresholds=(("transparent", None), ("orange", 0.8), ("red", 0.95)),
            threshold_style="dashed",
            fill=0,
            maximum=1,
        ),
        8,
        8,
    )


def _health(layout: Layout) -> None:
    layout.row("Replicas and restarts")
    w = (NAMESPACE, WORKLOAD)
    layout.add(
        timeseries(
            "Replicas: desired, ready, available",
            [
                Query(
                    f"sum by (workload) ({sel(names.WORKLOAD_REPLICAS_DESIRED, *w)})",
                    "{{workload}} desired",
                ),
                Query(
                    f"sum by (workload) ({sel(names.WORKLOAD_REPLICAS_READY, *w)})",
                    "{{workload}} ready",
                ),
                Query(
                    f"sum by (workload) ({sel(names.WORKLOAD_REPLICAS_AVAILABLE, *w)})",
                    "{{workload}} available",
                ),
            ],
            "none",
            "Ready below desired for long: pods are failing to start, or cannot be scheduled.",
            fill=0,
            overrides=[override(".* desired", regex=True, custom__lineStyle=DASHED)],
        ),
        12,
        8,
    )
    restarts = sel(names.CONTAINER_RESTARTS, NAMESPACE)
    layout.add(
        timeseries(
            "Container restarts",
            [Query(by_workload(f"increase({restarts}[$__rate_interval])"), "{{workload}}")],
            "none",
            "Restarts per interval, by workload.",
            bars=True,
            fill=80,
            stack=True,
        ),
        12,
        8,
    )
    reason = sel(names.CONTAINER_LAST_TERMINATED, NAMESPACE)
    layout.add(
        table(
            "Last termination of restarted containers",
            [Query(by_workload(reason, "count", "namespace, workload, container, reason"))],
            "Why containers last stopped (OOMKilled, Error, Completed...), counted per "
            "workload and container.",
            columns={
                "namespace": "Namespace",
                "workload": "Workload",
                "container": "Container",
                "reason": "Reason",
                "Value": "Containers",
            },
            overrides=[
                override(
                    "Reason",
                    mappings=value_map(
                        {"OOMKilled": ("OOMKilled", "red"), "Error": ("Error", "orange")}
                    ),
                    custom__cellOptions={"type": "color-text"},
                )
            ],
        ),
        24,
        7,
    )


def _jobs(layout: Layout) -> None:
    layout.row("Jobs and CronJobs")
    complete = sel(names.JOB_COMPLETE, NAMESPACE)
    layout.add(
        stat(
            "Failed jobs",
            [Query(f"count({complete} == 0) or vector(0)")],
            "none",
            "Jobs that ended in failure (backoff limit or deadline reached) and still exist.",
            ANY_IS_BAD,
        ),
        4,
        8,
    )
    jobs = (names.JOB_PODS, NAMESPACE)
    pods = sel(*jobs)
    layout.add(
        table(
            "Jobs",
            [
                Query(f"max by (namespace, job) ({sel(*jobs, status='active')})"),
                Query(f"max by (namespace, job) ({sel(*jobs, status='succeeded')})"),
                Query(f"max by (namespace, job) ({sel(*jobs, status='failed')})"),
                Query(
                    f"max by (namespace, job) ({complete}) "
                    f"or max by (namespace, job) (0 * {pods} - 1)"
                ),
            ],
            "Jobs with their pods by status, and whether they completed.",
            columns={
                "namespace": "Namespace",
                "job": "Job",
                "Value #A": "Active",
                "Value #B": "Succeeded",
                "Value #C": "Failed pods",
                "Value #D": "Outcome",
            },
            overrides=[
                override(
                    "Outcome",
                    mappings=value_map(
                        {
                            "1": ("complete", "green"),
                            "0": ("failed", "red"),
                            "-1": ("running", "blue"),
                        }
                    ),
                    custom__cellOptions={"type": "color-text"},
                )
            ],
            sort_by="Failed pods",
        ),
        10,
        8,
    )
    last = sel(names.CRONJOB_LAST_SCHEDULE, NAMESPACE)
    suspended = sel(names.CRONJOB_SUSPENDED, NAMESPACE)
    layout.add(
        table(
            "CronJobs",
            [
                Query(f"time() - max by (namespace, cronjob) ({last})"),
                Query(f"max by (namespace, cronjob) ({suspended})"),
            ],
            "When each CronJob last fired, and whether it is suspended.",
            columns={
                "namespace": "Namespace",
                "cronjob": "CronJob",
                "Value #A": "Since last run",
                "Value #B": "Suspended",
            },
            units={"Since last run": "s"},
            overrides=[
                override(
                    "Suspended", mappings=value_map({"0": ("no", "green"), "1": ("yes", "orange")})
                )
            ],
        ),
        10,
        8,
    )


def build() -> g.Dashboard:
    """The workloads dashboard."""
    layout = Layout()
    _table(layout)
    _resources(layout)
    _traffic(layout)
    _health(layout)
    _jobs(layout)
    return dashboard(
        UID,
        "foresight / Workloads",
        "Is each workload sized right, healthy, and at its desired replicas.",
        [
            query_variable("cluster", "Cluster", CLUSTERS),
            query_variable(
                "namespace",
                "Namespace",
                label_values(sel(names.POD_PHASE), "namespace"),
            ),
            query_variable(
                "workload",
                "Workload",
                label_values(sel(names.POD_OWNER, NAMESPACE), "workload"),
            ),
        ],
        layout,
    )
