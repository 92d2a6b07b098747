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
    ("container_fs_reads_bytes_total", "counter", "Cumulative count of bytes read"),
    ("container_fs_reads_total", "counter", "Cumulative count of reads completed"),
    (
        "container_fs_usage_bytes",
        "gauge",
        "Number of bytes that are consumed by the container on this filesystem.",
    ),
    ("container_fs_writes_bytes_total", "counter", "Cumulative count of bytes written"),
    ("container_fs_writes_total", "counter", "Cumulative count of writes completed"),
    ("container_last_seen", "gauge", "Last time a container was seen by the exporter"),
    ("container_memory_cache", "gauge", "Number of bytes of page cache memory."),
    ("container_memory_rss", "gauge", "Size of RSS in bytes."),
    (
        "container_memory_usage_bytes",
        "gauge",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
    ),
    ("container_memory_working_set_bytes", "gauge", "Current working set in bytes."),
    ("container_network_receive_bytes_total", "counter", "Cumulative count of bytes received"),
    (
        "container_network_receive_errors_total",
        "counter",
        "Cumulative count of errors encountered while receiving",
    ),
    (
        "container_network_receive_packets_dropped_total",
        "counter",
        "Cumulative count of packets dropped while receiving",
    ),
    ("container_network_receive_packets_total", "counter", "Cumulative count of packets received"),
    ("container_network_transmit_bytes_total", "counter", "Cumulative count of bytes transmitted"),
    (
        "container_network_transmit_errors_total",
        "counter",
        "Cumulative count of errors encountered while transmitting",
    ),
    (
        "container_network_transmit_packets_dropped_total",
        "counter",
        "Cumulative count of packets dropped while transmitting",
    ),
    (
        "container_network_transmit_packets_total",
        "counter",
        "Cumulative count of packets transmitted",
    ),
    (
        "container_oom_events_total",
        "counter",
        "Count of out of memory events observed for the container",
    ),
    ("container_spec_cpu_period", "gauge", "CPU period of the container."),
    ("container_spec_cpu_quota", "gauge", "CPU quota of the container."),
    ("container_spec_memory_limit_bytes", "gauge", "Memory limit for the container."),
    ("machine_memory_bytes", "gauge", "Amount of memory installed on the machine."),
)

PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1"
DISK = "/dev/vda1"
# A pod's network namespace holds eth0 and the tunnel devices of loaded kernel modules, at
# zero, as the kubelets' cAdvisor shows them (the shared 1.35 payload lists nine of them).
_TUNNELS = ("tunl0",)
# Traffic and disk I/O follow CPU: a service's bytes per CPU-second (kept simple).
RX_BYTES_PER_CPU_SECOND = 2.0e6
TX_BYTES_PER_CPU_SECOND = 6.0e6
BYTES_PER_PACKET = 900.0
READ_BYTES_PER_CPU_SECOND = 4.0e4
WRITE_BYTES_PER_CPU_SECOND = 1.6e5
BYTES_PER_IO = 16_384.0
WRITABLE_LAYER_BYTES = 40_960.0
LOG_BYTES_PER_CPU_SECOND = 2_048.0


def _pod_cpu(p: PodRuntime, elapsed: float) -> float:
    return sum(_cpu(c, elapsed) for c in p.containers)


def _sandbox_id(p: PodRuntime) -> str:
    return (p.uid.replace("-", "") * 3)[:64]


def render_cadvisor(node: NodeRuntime, now: float, last_step: float) -> str:
    """``/metrics/cadvisor`` in the kubelet's layout: per container, its pod's cgroup and
    sandbox (network), and the node's root cgroup, with the kubelet's labels."""
    elapsed = now - last_step
    ms = str(int(now * 1000))
    series: dict[str, list[str]] = {name: [] for name, _, _ in _CADVISOR_FAMILIES}

    def add(name: str, labels: str, value: float, stamped: bool = True) -> None:
        series[name].append(
            f"{labels} {go_float(value)} {ms}" if stamped else f"{labels} {go_float(value)}"
        )

    root = label_text(
        {"container": "", "id": "/", "image": "", "name": "", "namespace": "", "pod": ""}
    )
    node_cpu = node.system_cpu_seconds + NodeRuntime.SYSTEM_CPU * elapsed
    pods = _running(node)
    for p in pods:
        node_cpu += _pod_cpu(p, elapsed)
    add(
        "container_cpu_usage_seconds_total",
        label_text(
            {
                "container": "",
                "cpu": "total",
                "id": "/",
                "image": "",
                "name": "",
                "namespace": "",
                "pod": "",
            }
        ),
        node_cpu,
    )
    add("container_memory_working_set_bytes", root, node.memory_used)
    add("machine_memory_bytes", "", node.memory, stamped=False)
    for p in pods:
        cgroup = f"/kubepods/burstable/pod{p.uid}"
        pod_cpu = _pod_cpu(p, elapsed)
        pod_row = {
            "container": "",
            "id": cgroup,
            "image": "",
            "name": "",
            "namespace": p.namespace,
            "pod": p.name,
        }
        add("container_cpu_usage_seconds_total", label_text({**pod_row, "cpu": "total"}), pod_cpu)
        add("container_memory_working_set_bytes", label_text(pod_row), p.memory)
        sandbox = _sandbox_id(p)
        net = {
            "container": "",
            "id": f"{cgroup}/{sandbox}",
            "image": PAUSE_IMAGE,
            "name": sandbox,
            "namespace": p.namespace,
            "pod": p.name,
        }
        add("container_memory_working_set_bytes", label_text(net), 225_280.0)
        rx = pod_cpu * RX_BYTES_PER_CPU_SECOND
        tx = pod_cpu * TX_BYTES_PER_CPU_SECOND
        for interface in ("eth0", *_TUNNELS):
            labels = label_text({**net, "interface": interface})
            live = interface == "eth0"
            add("container_network_receive_bytes_total", labels, round(rx) if live else 0)
            add("container_network_transmit_bytes_total", labels, round(tx) if live else 0)
            add(
                "container_network_receive_packets_total",
                labels,
                round(rx / BYTES_PER_PACKET) if live else 0,
            )
            add(
                "container_network_transmit_packets_total",
                labels,
                round(tx / BYTES_PER_PACKET) if live else 0,
            )
            for name in (
                "container_network_receive_errors_total",
                "container_network_transmit_errors_total",
                "container_network_receive_packets_dropped_total",
                "container_network_transmit_packets_dropped_total",
            ):
                add(name, labels, 0)
        for c in p.containers:
            cid = c.container_id.split("//", 1)[-1]
            base = {
                "container": c.name,
                "id": f"{cgroup}/{cid}",
                "image": c.image,
                "name": cid,
                "namespace": p.namespace,
                "pod": p.name,
            }
            labels = label_text(base)
            u = c.usage
            cpu = _cpu(c, elapsed)
            add("container_cpu_usage_seconds_total", label_text({**base, "cpu": "total"}), cpu)
            if c.cpu_limit is not None:
                add("container_cpu_cfs_periods_total", labels, u.periods)
                add("container_cpu_cfs_throttled_periods_total", labels, u.throttled_periods)
                add("container_cpu_cfs_throttled_seconds_total", labels, u.throttled_seconds)
                add("container_spec_cpu_quota", labels, round(c.cpu_limit * 100000), stamped=False)
                add("container_spec_cpu_period", labels, 100000, stamped=False)
            add("container_memory_working_set_bytes", labels, u.memory)
            add("container_memory_usage_bytes", labels, u.memory * 1.05)
            add("container_memory_rss", labels, round(u.memory * 0.8))
            add("container_memory_cache", labels, round(u.memory * 0.2))
            add("container_spec_memory_limit_bytes", labels, c.memory_limit or 0.0, stamped=False)
            add("container_oom_events_total", labels, c.restarts)
            add("container_last_seen", labels, float(int(now)))
            disk = label_text({**base, "device": DISK})
            add(
                "container_fs_usage_bytes",
                disk,
                WRITABLE_LAYER_BYTES + cpu * LOG_BYTES_PER_CPU_SECOND,
            )
            read = cpu * READ_BYTES_PER_CPU_SECOND
            written = cpu * WRITE_BYTES_PER_CPU_SECOND
            add("container_fs_reads_bytes_total", disk, round(read))
            add("container_fs_writes_bytes_total", disk, round(written))
            add("container_fs_reads_total", disk, round(read / BYTES_PER_IO))
            add("container_fs_writes_total", disk, round(written / BYTES_PER_IO))
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


GIB = 2.0**30
NODE_FS_BYTES = 100 * GIB  # the simulated nodes' ephemeral-storage capacity
SYSTEM_FS_BYTES = 12 * GIB  # the OS, the kubelet's and the runtime's own files
IMAGE_BYTES = 300 * 2.0**20
INODES = 6_553_600
BYTES_PER_INODE = 32_768.0
PVC_BYTES = 10 * GIB
PVC_BASE_BYTES = 1 * GIB
PVC_BYTES_PER_CPU_SECOND = 2.0e5  # a database writes as it works


def _fs_block(capacity: float, used: float, now: float) -> dict[str, Any]:
    inodes_used = int(used / BYTES_PER_INODE)
    return {
        "time": rfc3339(now),
        "availableBytes": max(0, int(capacity - used)),
        "capacityBytes": int(capacity),
        "usedBytes": int(used),
        "inodesFree": INODES - inodes_used,
        "inodes": INODES,
        "inodesUsed": inodes_used,
    }


def _ephemeral(p: PodRuntime, elapsed: float) -> float:
    """A pod's ephemeral storage: containers' writable layers and logs."""
    return sum(
        WRITABLE_LAYER_BYTES + _cpu(c, elapsed) * LOG_BYTES_PER_CPU_SECOND for c in p.containers
    )


def _claim(p: PodRuntime) -> str | None:
    """The PersistentVolumeClaim a StatefulSet pod (``<set>-<ordinal>``) mounts: ``data-<pod>``,
    as from a volumeClaimTemplate named ``data``."""
    if p.workload is None:
        return None
    ordinal = p.name.removeprefix(f"{p.workload[1]}-")
    return f"data-{p.name}" if ordinal != p.name and ordinal.isdigit() else None


def _volumes(p: PodRuntime, now: float, elapsed: float) -> list[dict[str, Any]]:
    token = {"name": f"kube-api-access-{p.uid[:5]}", **_fs_block(NODE_FS_BYTES, 12_288, now)}
    volumes = [token]
    claim = _claim(p)
    if claim is not None:
        used = PVC_BASE_BYTES + _pod_cpu(p, elapsed) * PVC_BYTES_PER_CPU_SECOND
        volumes.append(
            {
                "name": "data",
                "pvcRef": {"name": claim, "namespace": p.namespace},
                **_fs_block(PVC_BYTES, min(used, PVC_BYTES), now),
            }
        )
    return volumes


def stats_summary(node: NodeRuntime, now: float, last_step: float) -> dict[str, Any]:
    """The ``/stats/summary`` document (Summary API v1alpha1): CPU and memory of the node,
    pods and containers; pods' ephemeral storage and volumes (StatefulSet pods with their
    claim); the node's filesystem and its image filesystem."""
    elapsed = now - last_step
    pods = []
    ephemeral_total = 0.0
    images: set[str] = set()
    for p in _running(node):
        containers = []
        for c in p.containers:
            images.add(c.image)
            logs = _cpu(c, elapsed) * LOG_BYTES_PER_CPU_SECOND
            containers.append(
                {
                    "name": c.name,
                    "startTime": rfc3339(c.start_time),
                    "cpu": _cpu_block(c.usage.cpu_rate, _cpu(c, elapsed), now),
                    "memory": _memory_block(c.usage.memory, now, c.memory_limit),
                    "rootfs": _fs_block(NODE_FS_BYTES, WRITABLE_LAYER_BYTES, now),
                    "logs": _fs_block(NODE_FS_BYTES, logs, now),
                }
            )
        ephemeral = _ephemeral(p, elapsed)
        ephemeral_total += ephemeral
        pods.append(
            {
                "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
                "startTime": rfc3339(p.start_time),
                "containers": containers,
                "cpu": _cpu_block(p.cpu_rate, _pod_cpu(p, elapsed), now),
                "memory": _memory_block(p.memory, now, None),
                "volume": _volumes(p, now, elapsed),
                "ephemeral-storage": _fs_block(NODE_FS_BYTES, ephemeral, now),
            }
        )
    node_rate = NodeRuntime.SYSTEM_CPU + sum(p.cpu_rate for p in node.pods.values() if not p.done)
    image_fs = _fs_block(NODE_FS_BYTES, (len(images) + 1) * IMAGE_BYTES, now)
    return {
        "node": {
            "nodeName": node.name,
            "startTime": rfc3339(node.start_time),
            "cpu": _cpu_block(node_rate, node.cpu_seconds + node_rate * elapsed, now),
            "memory": _memory_block(node.memory_used, now, node.memory),
            "fs": _fs_block(NODE_FS_BYTES, SYSTEM_FS_BYTES + ephemeral_total, now),
            "runtime": {"imageFs": image_fs, "containerFs": image_fs},
        },
        "pods": pods,
    }
