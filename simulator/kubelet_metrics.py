"""What a kubelet serves: ``/metrics/resource``, ``/metrics/cadvisor``, ``/stats/summary``.

Rendered from a node's runtime in the formats of kubelet 1.33: the resource metrics with
their ``[STABLE]`` help texts and millisecond sample timestamps. The HTTP layer renders at
the time of the last simulation step (as a kubelet serves its periodic stats cache); a
later ``now`` extrapolates counters at the current rate.
"""

from __future__ import annotations

from typing import Any

from simulator.objects import rfc3339
from simulator.promtext import go_float, label_text
from simulator.runtime import ContainerRuntime, NodeRuntime, PodRuntime

__all__ = ["render_cadvisor", "render_resource_metrics", "stats_summary"]

_RESOURCE_FAMILIES = (
    (
        "container_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
    ),
    (
        "container_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the container in bytes",
    ),
    (
        "container_start_time_seconds",
        "gauge",
        "[STABLE] Start time of the container since unix epoch in seconds",
    ),
    (
        "node_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
    ),
    ("node_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the node in bytes"),
    (
        "pod_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
    ),
    ("pod_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the pod in bytes"),
    (
        "resource_scrape_error",
        "gauge",
        "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
    ),
)


def _cpu(c: ContainerRuntime, elapsed: float) -> float:
    return c.usage.cpu_seconds + c.usage.cpu_rate * max(0.0, elapsed)


def _running(node: NodeRuntime) -> list[PodRuntime]:
    return sorted(
        (p for p in node.pods.values() if not p.done), key=lambda p: (p.namespace, p.name)
    )


def render_resource_metrics(node: NodeRuntime, now: float, last_step: float) -> str:
    """``/metrics/resource`` of ``node`` at ``now`` (counters extrapolated from ``last_step``)."""
    elapsed = now - last_step
    ms = str(int(now * 1000))
    pods = _running(node)
    series: dict[str, list[str]] = {name: [] for name, _, _ in _RESOURCE_FAMILIES}
    node_cpu = node.system_cpu_seconds + NodeRuntime.SYSTEM_CPU * elapsed
    node_mem = float(NodeRuntime.SYSTEM_MEMORY)
    for p in pods:
        pod_labels = label_text({"namespace": p.namespace, "pod": p.name})
        pod_cpu = 0.0
        pod_mem = 0.0
        for c in p.containers:
            labels = label_text({"container": c.name, "namespace": p.namespace, "pod": p.name})
            cpu = _cpu(c, elapsed)
            pod_cpu += cpu
            pod_mem += c.usage.memory
            series["container_cpu_usage_seconds_total"].append(f"{labels} {go_float(cpu)} {ms}")
            series["container_memory_working_set_bytes"].append(
                f"{labels} {go_float(c.usage.memory)} {ms}"
            )
            series["container_start_time_seconds"].append(
                f"{labels} {go_float(float(int(c.start_time)))} {ms}"
            )
        node_cpu += pod_cpu
        node_mem += pod_mem
        series["pod_cpu_usage_seconds_total"].append(f"{pod_labels} {go_float(pod_cpu)} {ms}")
        series["pod_memory_working_set_bytes"].append(f"{pod_labels} {go_float(pod_mem)} {ms}")
    series["node_cpu_usage_seconds_total"].append(f" {go_float(node_cpu)} {ms}")
    series["node_memory_working_set_bytes"].append(f" {go_float(node_mem)} {ms}")
    series["resource_scrape_error"].append(" 0")
    out: list[str] = []
    for name, kind, help_text in _RESOURCE_FAMILIES:
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        out.extend(f"{name}{line}\n" for line in series[name])
    return "".join(out)


_CADVISOR_FAMILIES = (
    ("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds."),
    (
        "container_cpu_cfs_periods_total",
        "counter",
        "Number of elapsed enforcement period intervals.",
    ),
    (
        "container_cpu_cfs_throttled_periods_total",
        "counter",
        "Number of throttled period intervals.",
    ),
    (
        "container_cpu_cfs_throttled_seconds_total",
        "counter",
        "Total time duration the container has been throttled.",
    ),
    ("container_memory_working_set_bytes", "gauge", "Current working set in bytes."),
    ("container_spec_cpu_quota", "gauge", "CPU quota of the container."),
    ("container_spec_cpu_period", "gauge", "CPU period of the container."),
    ("container_spec_memory_limit_bytes", "gauge", "Memory limit for the container."),
    (
        "container_oom_events_total",
        "counter",
        "Count of out of memory events observed for the container",
    ),
)


def render_cadvisor(node: NodeRuntime, now: float, last_step: float) -> str:
    """A ``/metrics/cadvisor`` subset: CPU, throttling, memory and limits per container."""
    elapsed = now - last_step
    ms = str(int(now * 1000))
    series: dict[str, list[str]] = {name: [] for name, _, _ in _CADVISOR_FAMILIES}
    for p in _running(node):
        for c in p.containers:
            cid = c.container_id.split("//", 1)[-1]
            base = {
                "container": c.name,
                "id": f"/kubepods/pod{p.uid}/{cid}",
                "image": c.image,
                "name": cid,
                "namespace": p.namespace,
                "pod": p.name,
            }
            labels = label_text(base)
            cpu_labels = label_text({**base, "cpu": "total"})
            u = c.usage
            series["container_cpu_usage_seconds_total"].append(
                f"{cpu_labels} {go_float(_cpu(c, elapsed))} {ms}"
            )
            if c.cpu_limit is not None:
                series["container_cpu_cfs_periods_total"].append(f"{labels} {u.periods} {ms}")
                series["container_cpu_cfs_throttled_periods_total"].append(
                    f"{labels} {u.throttled_periods} {ms}"
                )
                series["container_cpu_cfs_throttled_seconds_total"].append(
                    f"{labels} {go_float(u.throttled_seconds)} {ms}"
                )
                series["container_spec_cpu_quota"].append(
                    f"{labels} {go_float(round(c.cpu_limit * 100000))}"
                )
                series["container_spec_cpu_period"].append(f"{labels} 100000")
            series["container_memory_working_set_bytes"].append(
                f"{labels} {go_float(u.memory)} {ms}"
            )
            series["container_spec_memory_limit_bytes"].append(
                f"{labels} {go_float(c.memory_limit or 0.0)}"
            )
            series["container_oom_events_total"].append(f"{labels} {c.restarts} {ms}")
    out: list[str] = []
    for name, kind, help_text in _CADVISOR_FAMILIES:
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        out.extend(f"{name}{line}\n" for line in series[name])
    return "".join(out)


def _cpu_block(rate: float, seconds: float, now: float) -> dict[str, Any]:
    return {
        "time": rfc3339(now),
        "usageNanoCores": int(rate * 1e9),
        "usageCoreNanoSeconds": int(seconds * 1e9),
    }


def _memory_block(used: float, now: float, limit: float | None) -> dict[str, Any]:
    block: dict[str, Any] = {
        "time": rfc3339(now),
        "usageBytes": int(used),
        "workingSetBytes": int(used),
        "rssBytes": int(used * 0.8),
        "pageFaults": 0,
        "majorPageFaults": 0,
    }
    if limit:
        block["availableBytes"] = max(0, int(limit - used))
    return block


def stats_summary(node: NodeRuntime, now: float, last_step: float) -> dict[str, Any]:
    """The ``/stats/summary`` document (Summary API v1alpha1)."""
    elapsed = now - last_step
    pods = []
    for p in _running(node):
        containers = [
            {
                "name": c.name,
                "startTime": rfc3339(c.start_time),
                "cpu": _cpu_block(c.usage.cpu_rate, _cpu(c, elapsed), now),
                "memory": _memory_block(c.usage.memory, now, c.memory_limit),
            }
            for c in p.containers
        ]
        pods.append(
            {
                "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
                "startTime": rfc3339(p.start_time),
                "containers": containers,
                "cpu": _cpu_block(p.cpu_rate, sum(_cpu(c, elapsed) for c in p.containers), now),
                "memory": _memory_block(p.memory, now, None),
            }
        )
    node_rate = NodeRuntime.SYSTEM_CPU + sum(p.cpu_rate for p in node.pods.values() if not p.done)
    return {
        "node": {
            "nodeName": node.name,
            "startTime": rfc3339(node.start_time),
            "cpu": _cpu_block(node_rate, node.cpu_seconds + node_rate * elapsed, now),
            "memory": _memory_block(node.memory_used, now, node.memory),
        },
        "pods": pods,
    }
