"""Benchmark of rule evaluation: ``python -m bench.promql [--nodes N] [--rounds N] [--json]``.

Rounds of every rule in ``shared/data/promql/rules/kube-prometheus`` over a store holding a
synthetic cluster, timed as the service runs them (:func:`alerts.service.evaluate_round`:
each due group evaluated as a working copy in a worker thread, recording rules written back
to the store and read by later groups, alert state stepped and saved): the round that
created the most alerts (during the history) and the steady rounds after it, each with the
rise of resident memory at its peak; and every query evaluated alone.
The cluster is shaped as kube-prometheus scrapes one:

- kube-state-metrics (``job="kube-state-metrics"``): per pod ``kube_pod_info``, owner,
  five phases, three ready conditions, status reasons; per container requests and limits
  of cpu and memory; per node info, role, taints, conditions, allocatable and capacity;
  deployments with their replica sets, stateful sets, daemon sets, jobs, HPAs, PDBs,
  volumes and quotas.
- cAdvisor (``job="kubelet", metrics_path="/metrics/cadvisor"``): per container, per pod
  cgroup (``container=""``, no image) and per node root cgroup.
- kubelet (``metrics_path="/metrics"``): per node, with histograms and volume stats.
- node-exporter (``job="node-exporter"``, ``instance`` relabelled to the node name): eight
  CPUs of eight modes, three filesystems, two disks, two network devices, systemd units.
- the API server's request counters and SLI histograms per verb, scope and resource.

Every other metric the rules read (control plane, Prometheus, Alertmanager) gets three
targets labelled with the values the rules ask for with ``=``. Pods: two daemon-set pods per
node, the rest in deployments of ten (every twentieth a stateful set, every twentieth a job),
one in three with a sidecar; a few are pending, not ready or crash-looping so that alerts have
something to find. Thirty minutes of samples, one every 30 s: counters grow, gauges hold
their level, states are 0 or 1.

The benchmark's store holds no series the rules write: after each scrape of those thirty
minutes the rule engine evaluates the groups that are due, as the service does, so recorded
series and ``ALERTS`` have their history when the timed rounds start. Each timed round is
the first moment after some more scrapes at which every group is due at once. After each
scrape, what is alive is frozen out of the cyclic collector, as the service does after each
collection cycle (:func:`runtime.gcpause.freeze_long_lived`).
``--nodes 5000`` is the 150,000-pod cluster (about 10 M series: tens of GiB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import promql_parser

from alerts.rules.group import EvalContext, GroupState, written_metrics
from alerts.rules.loader import load_file
from alerts.rules.manager import RuleManager
from alerts.rules.model import GroupSpec
from alerts.rules.state import AlertState
from alerts.service import evaluate_round
from alerts.settings import RuleSettings
from promql import Engine, PromQLSettings, QueryResult, parse
from runtime.clock import VirtualClock
from runtime.gcpause import freeze_long_lived
from tsdb import MAINTAIN_EVERY_SECONDS, Store, StoreSettings
from tsdb.selector import matchers_of

RULES = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "promql"
    / "rules"
    / "kube-prometheus"
)
T0_MS = 1_750_000_000_000
SCRAPE_MS = 30_000
SCRAPES = 60
BUCKETS = ("0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "10", "30", "60", "+Inf")
CPUS = 8
CPU_MODES = ("idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user")
FILESYSTEMS = (
    ("/dev/nvme0n1p1", "/", "ext4"),
    ("/dev/nvme0n1p15", "/boot/efi", "vfat"),
    ("tmpfs", "/run", "tmpfs"),
)
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONDITIONS = ("true", "false", "unknown")
NODE_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
KSM = {"job": "kube-state-metrics", "instance": "10.0.255.10:8443"}
COUNTER = -1.0
"""Value marker: a counter growing at a random rate (a histogram's buckets: markers below
it down to ``COUNTER - 1``, their share of the rate)."""
GAUGE = -3.0
"""Value marker: a gauge at a random level."""

Sample = tuple[dict[str, str], float]
ENGINE = PromQLSettings(max_samples=500_000_000, max_series=10_000_000)


def load_groups(folder: Path) -> list[GroupSpec]:
    """The rule groups of the folder's YAML files, read as the rule engine reads them."""
    if not folder.is_dir():
        raise SystemExit(f"rule files not found at {folder} (shared/data/promql/rules)")
    return [group for path in sorted(folder.glob("*.yaml")) for group in load_file(path)]


def load_rules(folder: Path) -> list[tuple[str, str]]:
    """``(name, expr)`` of every rule in the folder's YAML files."""
    return [(rule.name, rule.expr) for group in load_groups(folder) for rule in group.rules]


def _selected(rules: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """Per metric name, the label values the rules ask for with ``=``."""
    wanted: dict[str, dict[str, str]] = defaultdict(dict)

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            wanted[node.name]
            for m in matchers_of(node):
                if m.type.value == "=" and m.name != "__name__":
                    wanted[node.name].setdefault(m.name, m.value)
        return True

    for _, expr in rules:
        promql_parser.walk(parse(expr), visit)
    return wanted


@dataclass(frozen=True)
class Pod:
    """One pod of the synthetic cluster."""

    namespace: str
    name: str
    uid: str
    node: int
    owner_kind: str
    owner_name: str
    containers: tuple[str, ...]
    phase: str
    ready: bool


@dataclass(frozen=True)
class Workload:
    """A deployment, stateful set or job and its pods' count."""

    kind: str
    namespace: str
    name: str
    replicas: int


class Cluster:
    """Nodes, pods and workloads, and the series each exporter reports about them."""

    def __init__(self, nodes: int, pods_per_node: int) -> None:
        self.nodes = nodes
        self.pods: list[Pod] = []
        self.workloads: list[Workload] = []
        for n in range(nodes):
            self.pods.append(self._daemon_pod("monitoring", "node-exporter", n, 0))
            self.pods.append(self._daemon_pod("kube-system", "kube-proxy", n, 1))
        rest = nodes * max(pods_per_node - 2, 0)
        for w in range((rest + 9) // 10):
            kind = ("StatefulSet", "Job")[w % 20] if w % 20 < 2 else "Deployment"
            namespace, name = f"team-{w % 100}", f"svc-{w}"
            replicas = min(10, rest - 10 * w)
            self.workloads.append(Workload(kind, namespace, name, replicas))
            containers = ("app", "istio-proxy") if w % 3 == 0 else ("app",)
            for r in range(replicas):
                g = 10 * w + r
                if kind == "Deployment":
                    pod, owner_kind, owner = (
                        f"{name}-7d9f8c-{g:05x}",
                        "ReplicaSet",
                        f"{name}-7d9f8c",
                    )
                elif kind == "StatefulSet":
                    pod, owner_kind, owner = f"{name}-{r}", kind, name
                else:
                    pod, owner_kind, owner = f"{name}-{g:05x}", kind, name
                phase = "Succeeded" if kind == "Job" else "Pending" if g % 500 == 7 else "Running"
                self.pods.append(
                    Pod(
                        namespace,
                        pod,
                        f"uid-{g:08x}",
                        g % nodes,
                        owner_kind,
                        owner,
                        containers,
                        phase,
                        phase == "Running" and g % 200 != 3,
                    )
                )

    @staticmethod
    def _daemon_pod(namespace: str, name: str, node: int, slot: int) -> Pod:
        containers = ("node-exporter", "kube-rbac-proxy") if slot == 0 else (name,)
        uid = f"uid-ds{slot}-{node:06x}"
        pod = f"{name}-{node:05x}"
        return Pod(namespace, pod, uid, node, "DaemonSet", name, containers, "Running", True)

    # ------------------------------------------------------------------ per exporter

    def series(self, name: str, fixed: dict[str, str]) -> Iterator[Sample]:
        """The series of metric ``name`` with their value (or a value marker)."""
        if name.startswith("kube_pod_container_"):
            yield from self._ksm_container(name)
        elif name.startswith("kube_pod_"):
            yield from self._ksm_pod(name)
        elif name.startswith("kube_node_"):
            yield from self._ksm_node(name)
        elif name.startswith("kube_") and not name.startswith("kube_state_metrics"):
            yield from self._ksm_objects(name)
        elif name.startswith("container_"):
            yield from self._cadvisor(name)
        elif name.startswith("kubelet_"):
            yield from self._kubelet(name)
        elif name.startswith("node_"):
            yield from self._node_exporter(name)
        elif name.startswith("apiserver_request"):
            yield from self._apiserver(name)
        else:
            for i in range(3):
                yield {"instance": f"10.0.254.{i}:443", "pod": f"target-{i}", **fixed}, GAUGE

    def _node(self, n: int) -> str:
        return f"node-{n:04d}"

    def _ksm_pod(self, name: str) -> Iterator[Sample]:
        for p in self.pods:
            base = {**KSM, "namespace": p.namespace, "pod": p.name, "uid": p.uid}
            if name == "kube_pod_info":
                yield (
                    {
                        **base,
                        "node": self._node(p.node),
                        "host_ip": f"10.0.{p.node // 250}.{p.node % 250}",
                        "pod_ip": f"10.{64 + p.node // 250}.{p.node % 250}.{len(p.name) % 250}",
                        "created_by_kind": p.owner_kind,
                        "created_by_name": p.owner_name,
                        "priority_class": "",
                    },
                    1.0,
                )
            elif name == "kube_pod_owner":
                yield (
                    {
                        **base,
                        "owner_kind": p.owner_kind,
                        "owner_name": p.owner_name,
                        "owner_is_controller": "true",
                    },
                    1.0,
                )
            elif name == "kube_pod_status_phase":
                for phase in PHASES:
                    yield {**base, "phase": phase}, float(phase == p.phase)
            elif name == "kube_pod_status_ready":
                actual = "true" if p.ready else "false"
                for c in CONDITIONS:
                    yield {**base, "condition": c}, float(c == actual)
            elif name == "kube_pod_status_reason":
                for reason in ("Evicted", "NodeAffinity", "NodeLost", "SchedulingGated"):
                    yield {**base, "reason": reason}, 0.0
            else:
                yield base, GAUGE

    def _ksm_container(self, name: str) -> Iterator[Sample]:
        for i, p in enumerate(self.pods):
            for c in p.containers:
                base = {**KSM, "namespace": p.namespace, "pod": p.name, "uid": p.uid}
                base["container"] = c
                if name.endswith(("_requests", "_limits")):
                    node = self._node(p.node)
                    yield {**base, "node": node, "resource": "cpu", "unit": "core"}, 0.25
                    yield {**base, "node": node, "resource": "memory", "unit": "byte"}, 2.0**28
                elif name == "kube_pod_container_status_waiting_reason":
                    if i % 300 == 11:
                        yield {**base, "reason": "CrashLoopBackOff"}, 1.0
                else:
                    yield base, GAUGE

    def _ksm_node(self, name: str) -> Iterator[Sample]:
        for n in range(self.nodes):
            base = {**KSM, "node": self._node(n)}
            if name == "kube_node_info":
                yield (
                    {
                        **base,
                        "kernel_version": "6.1.0-18-cloud-amd64",
                        "os_image": "Debian GNU/Linux 12 (bookworm)",
                        "kubelet_version": "v1.30.2",
                        "container_runtime_version": "containerd://1.7.18",
                        "internal_ip": f"10.0.{n // 250}.{n % 250}",
                        "provider_id": f"gce://project/zone/{self._node(n)}",
                    },
                    1.0,
                )
            elif name == "kube_node_role":
                yield {**base, "role": "control-plane" if n < 3 else "worker"}, 1.0
            elif name == "kube_node_spec_taint":
                if n < 3:
                    key = "node-role.kubernetes.io/control-plane"
                    yield {**base, "key": key, "value": "", "effect": "NoSchedule"}, 1.0
            elif name == "kube_node_status_condition":
                for cond in NODE_CONDITIONS:
                    actual = "true" if cond == "Ready" else "false"
                    for status in CONDITIONS:
                        yield {**base, "condition": cond, "status": status}, float(status == actual)
            elif name.startswith(("kube_node_status_allocatable", "kube_node_status_capacity")):
                yield {**base, "resource": "cpu", "unit": "core"}, float(CPUS)
                yield {**base, "resource": "memory", "unit": "byte"}, 2.0**35
                yield {**base, "resource": "pods", "unit": "integer"}, 110.0
            else:
                yield base, 0.0

    def _ksm_objects(self, name: str) -> Iterator[Sample]:
        kind, _, field = name.removeprefix("kube_").partition("_")
        if kind == "resourcequota":
            for ns in range(100):
                for resource in ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory"):
                    for t in ("hard", "used"):
                        labels = {"namespace": f"team-{ns}", "resourcequota": "default"}
                        labels |= {"resource": resource, "type": t}
                        yield {**KSM, **labels}, GAUGE
            return
        if kind == "daemonset":
            for ds_ns, ds in (("monitoring", "node-exporter"), ("kube-system", "kube-proxy")):
                yield {**KSM, "namespace": ds_ns, "daemonset": ds}, float(self.nodes)
            return
        if kind in ("persistentvolumeclaim", "persistentvolume"):
            for p in self.pods:
                if p.owner_kind != "StatefulSet":
                    continue
                pvc = {"namespace": p.namespace, "persistentvolumeclaim": f"data-{p.name}"}
                if name == "kube_persistentvolume_status_phase":
                    for phase in ("Pending", "Available", "Bound", "Released", "Failed"):
                        pv = {"persistentvolume": f"pv-{p.uid}", "phase": phase}
                        yield {**KSM, **pv}, float(phase == "Bound")
                elif name == "kube_persistentvolumeclaim_access_mode":
                    yield {**KSM, **pvc, "access_mode": "ReadWriteOnce"}, 1.0
                elif kind == "persistentvolumeclaim":
                    yield {**KSM, **pvc}, 1.0
            return
        wanted = {
            "deployment": "Deployment",
            "replicaset": "Deployment",
            "horizontalpodautoscaler": "Deployment",
            "statefulset": "StatefulSet",
            "poddisruptionbudget": "StatefulSet",
            "job": "Job",
        }.get(kind)
        for w in self.workloads:
            if w.kind != wanted:
                continue
            at = {"namespace": w.namespace}
            if kind == "replicaset":
                # The current replica set and the one the last rollout left behind.
                for rs in (f"{w.name}-7d9f8c", f"{w.name}-5b6c4d"):
                    owner = {"owner_kind": "Deployment", "owner_name": w.name}
                    yield (
                        {**KSM, **at, "replicaset": rs, **owner, "owner_is_controller": "true"},
                        1.0,
                    )
            elif kind == "job":
                at["job_name"] = w.name
                if field == "owner":
                    owner = {"owner_kind": "CronJob", "owner_name": w.name.rsplit("-", 1)[0]}
                    yield {**KSM, **at, **owner, "owner_is_controller": "true"}, 1.0
                elif field == "failed":
                    yield {**KSM, **at, "condition": "true"}, 0.0
                else:
                    yield {**KSM, **at}, GAUGE
            elif kind == "horizontalpodautoscaler":
                if len(w.name) % 5 == 0:
                    yield {**KSM, **at, "horizontalpodautoscaler": w.name}, float(w.replicas)
            elif field == "status_condition":
                for cond in ("Available", "Progressing"):
                    for status in CONDITIONS:
                        labels = {kind: w.name, "condition": cond, "status": status}
                        yield {**KSM, **at, **labels}, float(status == "true")
            elif field.endswith("revision"):
                yield {**KSM, **at, kind: w.name, "revision": f"{w.name}-6f7b"}, 1.0
            elif field.endswith("generation"):
                yield {**KSM, **at, kind: w.name}, 3.0
            else:
                yield {**KSM, **at, kind: w.name}, float(w.replicas)

    def _cadvisor(self, name: str) -> Iterator[Sample]:
        value = COUNTER if name.endswith("_total") else GAUGE
        for n in range(self.nodes):
            target = {
                "job": "kubelet",
                "metrics_path": "/metrics/cadvisor",
                "endpoint": "https-metrics",
                "service": "kubelet",
                "namespace": "kube-system",
                "instance": f"10.0.{n // 250}.{n % 250}:10250",
                "node": self._node(n),
            }
            yield {**target, "id": "/"}, value
        for p in self.pods:
            target = {
                "job": "kubelet",
                "metrics_path": "/metrics/cadvisor",
                "endpoint": "https-metrics",
                "service": "kubelet",
                "instance": f"10.0.{p.node // 250}.{p.node % 250}:10250",
                "node": self._node(p.node),
                "namespace": p.namespace,
                "pod": p.name,
            }
            cgroup = f"/kubepods.slice/kubepods-pod{p.uid}.slice"
            yield {**target, "id": cgroup}, value
            for c in p.containers:
                cid = f"{p.uid}{c}"
                yield (
                    {
                        **target,
                        "container": c,
                        "id": f"{cgroup}/cri-containerd-{cid}.scope",
                        "image": f"registry.example.com/{c}:1.4.2",
                        "name": cid,
                    },
                    value,
                )

    def _kubelet(self, name: str) -> Iterator[Sample]:
        for n in range(self.nodes):
            target = {
                "job": "kubelet",
                "metrics_path": "/metrics",
                "endpoint": "https-metrics",
                "service": "kubelet",
                "namespace": "kube-system",
                "instance": f"10.0.{n // 250}.{n % 250}:10250",
                "node": self._node(n),
            }
            if name == "kubelet_pod_worker_duration_seconds_bucket":
                for op in ("create", "sync", "update"):
                    yield {**target, "operation_type": op}, COUNTER
            elif name == "kubelet_evictions":
                yield {**target, "eviction_signal": "memory.available"}, COUNTER
            elif name.startswith("kubelet_volume_stats_"):
                continue
            else:
                yield target, COUNTER if name.endswith(("_total", "_bucket")) else GAUGE
        if name.startswith("kubelet_volume_stats_"):
            for p in self.pods:
                if p.owner_kind == "StatefulSet":
                    target = {
                        "job": "kubelet",
                        "metrics_path": "/metrics",
                        "instance": f"10.0.{p.node // 250}.{p.node % 250}:10250",
                        "node": self._node(p.node),
                        "namespace": p.namespace,
                        "persistentvolumeclaim": f"data-{p.name}",
                    }
                    yield target, GAUGE

    def _node_exporter(self, name: str) -> Iterator[Sample]:
        if name.startswith(("node_md_", "node_bonding_")):
            return
        value = COUNTER if name.endswith("_total") else GAUGE
        for n in range(self.nodes):
            target = {
                "job": "node-exporter",
                "instance": self._node(n),
                "namespace": "monitoring",
                "pod": f"node-exporter-{n:05x}",
                "container": "kube-rbac-proxy",
                "endpoint": "https",
                "service": "node-exporter",
            }
            if name == "node_cpu_seconds_total":
                for cpu in range(CPUS):
                    for mode in CPU_MODES:
                        yield {**target, "cpu": str(cpu), "mode": mode}, COUNTER
            elif name.startswith("node_filesystem_"):
                for device, mountpoint, fstype in FILESYSTEMS:
                    fs = {"device": device, "mountpoint": mountpoint, "fstype": fstype}
                    yield {**target, **fs}, 0.0 if name.endswith("readonly") else GAUGE
            elif name.startswith("node_disk_"):
                for device in ("nvme0n1", "dm-0"):
                    yield {**target, "device": device}, value
            elif name.startswith("node_network_"):
                for device in ("eth0", "lo"):
                    yield {**target, "device": device}, 1.0 if name.endswith("_up") else value
            elif name == "node_systemd_unit_state":
                for unit in ("kubelet.service", "containerd.service"):
                    for state in ("activating", "active", "deactivating", "failed", "inactive"):
                        yield {**target, "name": unit, "state": state}, float(state == "active")
            elif name in ("node_textfile_scrape_error", "node_timex_offset_seconds"):
                yield target, 0.0
            elif name == "node_timex_sync_status":
                yield target, 1.0
            else:
                yield target, value

    def _apiserver(self, name: str) -> Iterator[Sample]:
        verbs = ("GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE")
        resources = ("pods", "nodes", "deployments", "configmaps", "secrets", "leases")
        for i in range(3):
            target = {"job": "apiserver", "instance": f"10.0.253.{i}:6443", "component": ""}
            for verb in verbs:
                for resource in resources:
                    at = {**target, "verb": verb, "resource": resource, "group": ""}
                    if name == "apiserver_request_total":
                        for code in ("200", "201", "404", "409", "500"):
                            yield {**at, "code": code}, COUNTER
                        continue
                    for scope in ("resource", "namespace", "cluster"):
                        yield {**at, "scope": scope, "subresource": ""}, COUNTER


def new_store() -> Store:
    """An empty in-memory store large enough for the benchmark's cluster."""
    return Store(StoreSettings(max_series=10_000_000), VirtualClock(0.0), persistent=False)


class Scrapes:
    """The exporters' series of the cluster in a store, and their samples appended one scrape
    at a time: the series of every metric the rules select, except those in ``skip``."""

    def __init__(
        self,
        store: Store,
        rules: list[tuple[str, str]],
        cluster: Cluster,
        skip: Collection[str] = (),
    ) -> None:
        self.store = store
        rng = np.random.default_rng(1)
        refs: list[int] = []
        levels: list[float] = []
        for name, fixed in sorted(_selected(rules).items()):
            if name in skip:
                continue
            for identity, value in cluster.series(name, fixed):
                labels = {**identity, "__name__": name}
                if name.endswith("_bucket"):
                    for i, le in enumerate(BUCKETS):
                        refs.append(store.ref({**labels, "le": le}))
                        # Cumulative buckets: the same rate, a growing share of it.
                        levels.append(COUNTER - (i + 1) / len(BUCKETS))
                else:
                    refs.append(store.ref(labels))
                    levels.append(value)
        self.ids = np.array(refs, dtype=np.int32)
        marker = np.array(levels)
        self.rate = rng.uniform(0.5, 50, len(self.ids))
        self.counter = (marker <= COUNTER) & (marker >= COUNTER - 1)
        share = np.where(self.counter, COUNTER - marker, 1.0)
        self.share = np.where(share == 0, 1.0, share)
        self.level = np.where(marker == GAUGE, rng.uniform(0, 1e6, len(self.ids)), marker)

    def append(self, k: int) -> int:
        """Append scrape ``k`` (at ``T0_MS + k * SCRAPE_MS``); returns its time."""
        at = T0_MS + k * SCRAPE_MS
        grown = self.rate * self.share * (1000 + k * SCRAPE_MS / 1000)
        self.store.append_batch(self.ids, at, np.where(self.counter, grown, self.level))
        return at


def build_store(rules: list[tuple[str, str]], cluster: Cluster) -> Store:
    """A store with series for every metric the rules select, recorded ones included (each
    rule can then be evaluated alone over the same data), and ``SCRAPES`` scrapes of them."""
    store = new_store()
    scrapes = Scrapes(store, rules, cluster)
    for k in range(SCRAPES):
        scrapes.append(k)
    # What the flusher's periodic maintenance does to a running store's blocks.
    store.maintain()
    return store


def status_kib(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM`` figure of this process, KiB (None off Linux)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def _reset_peak() -> bool:
    """Start measuring the peak resident size afresh (Linux: ``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Round:
    """One round of the rule engine: how long it took (wall clock, and CPU time of the
    process: on a shared machine the latter is what the round costs), how far resident memory
    rose above what it was before the round (None where it cannot be measured) and how many
    alerts (pending or firing) it added."""

    seconds: float
    cpu_seconds: float
    peak_rise_bytes: int | None
    alerts_added: int


class FolderRules(RuleManager):
    """The service's rule manager over the rule files of ``folder``, each group staggered by
    its file's path inside ``folder`` instead of by the path it was loaded from. The service
    hashes the whole path, as Prometheus does: the offset of every group inside its interval,
    hence the moments the groups are evaluated at, the samples they see and the alerts the
    benchmarks count, moved with the place of the checkout (``/work/shared/...`` from one
    checkout, ``/tmp/shared/...`` through a worktree's symlink: at 30 nodes, 1,484 alerts
    added and 1,873 firing against 1,465 and 1,866)."""

    def __init__(self, folder: Path, settings: RuleSettings, ctx: EvalContext) -> None:
        super().__init__(settings, ctx)
        self.folder = folder

    def stagger_key(self, g: GroupState) -> str:
        inside = Path(g.spec.file).relative_to(self.folder).as_posix()
        return f"{inside};{g.spec.name}"


class ServiceRules:
    """The synthetic cluster scraped every ``SCRAPE_MS`` into a store of its own, and the rule
    engine as the service runs it over that store: a :class:`RuleManager` over the
    kube-prometheus rules alone (not foresight's built-in ones), groups without an interval
    evaluated every scrape interval, each round the service's own
    (:func:`alerts.service.evaluate_round`: every due group evaluated as a working copy in a
    worker thread and installed, recorded series and ``ALERTS`` written back and read by the
    groups after them, the alert state saved in ``state_dir``).

    The store holds no series the rules write but those the rules wrote: the constructor
    scrapes ``scrapes`` times and runs a round after each scrape (:attr:`history`). Its
    blocks are maintained every minute of scrape time, as the service's flusher does."""

    def __init__(
        self, folder: Path, cluster: Cluster, state_dir: Path, scrapes: int = SCRAPES
    ) -> None:
        started = time.perf_counter()
        written = set().union(*(written_metrics(g) for g in load_groups(folder)))
        self.store = new_store()
        self.scrapes = Scrapes(self.store, load_rules(folder), cluster, skip=written)
        settings = RuleSettings(
            files=[folder],
            builtin=False,
            evaluation_interval_seconds=SCRAPE_MS / 1000,
            state_dir=state_dir,
        )
        self.manager = FolderRules(
            folder, settings, EvalContext(Engine(self.store, ENGINE), self.store)
        )
        if not self.manager.reload(force=True):
            raise SystemExit(self.manager.last_error)
        if any(g.interval_ms % SCRAPE_MS for g in self.manager.groups):
            raise SystemExit("the benchmark needs group intervals that are whole scrape intervals")
        # The service's rounds fall on the grid of the group with the longest interval, so
        # that some of them find every group due.
        longest = max(self.manager.groups, key=lambda g: g.interval_ms)
        first = self.manager.slot(longest, T0_MS + longest.interval_ms)
        self._phase = (first - T0_MS) % SCRAPE_MS
        self._scrape = -1
        self._maintained_ms: int | None = None
        self.history: list[Round] = []
        for _ in range(scrapes):
            self.history.append(self.round(self._scrape_once()))
        self.history_s = sum(r.seconds for r in self.history)
        self.built_s = time.perf_counter() - started

    def _scrape_once(self) -> int:
        self._scrape += 1
        at = self.scrapes.append(self._scrape) + self._phase
        if self._maintained_ms is None:
            self._maintained_ms = at
        elif at - self._maintained_ms >= MAINTAIN_EVERY_SECONDS * 1000:
            # The flusher's periodic maintenance: it merges the blocks each scrape seals (one
            # a scrape at 1,000 nodes), which every read of a window visits otherwise.
            self.store.maintain()
            self._maintained_ms = at
        # What the service does after each collection cycle (see runtime.gcpause): full
        # collections during rounds then walk what the last cycle made, not the whole store.
        freeze_long_lived()
        return at

    @property
    def scrapes_done(self) -> int:
        """Scrapes appended so far."""
        return self._scrape + 1

    def next_full_round(self) -> int:
        """Scrape and run the due groups, untimed, up to the next moment at which every group
        is due, and return that moment (its round is the caller's to run)."""
        while True:
            at = self._scrape_once()
            if len(self.manager.due(at)) == len(self.manager.groups):
                return at
            asyncio.run(evaluate_round(self.manager, at))

    def round(self, at: int) -> Round:
        """Run the service's round at ``at``."""
        before = self.active_alerts()
        rss = status_kib("VmRSS")
        measured = rss is not None and _reset_peak()
        start, cpu = time.perf_counter(), time.process_time()
        asyncio.run(evaluate_round(self.manager, at))
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        peak = status_kib("VmHWM") if measured else None
        rise = None if peak is None or rss is None else max(peak - rss, 0) * 1024
        return Round(took, cpu, rise, self.active_alerts() - before)

    def creation_round(self) -> Round:
        """The history's round that added the most alerts (the first round that finds
        them; in a live service, the first round after a restart without state or after a
        cluster-wide incident)."""
        return max(self.history, key=lambda r: (r.alerts_added, r.seconds))

    def active_alerts(self) -> int:
        """Alerts pending or firing."""
        return sum(
            a.state is not AlertState.INACTIVE
            for g in self.manager.groups
            for _, a in g.active_alerts()
        )

    def alert_counts(self) -> tuple[int, int, int]:
        """Alerts firing and pending, and rules whose last evaluation failed."""
        states = [a.state for g in self.manager.groups for _, a in g.active_alerts()]
        failing = sum(s.health == "err" for g in self.manager.groups for s in g.status)
        return states.count(AlertState.FIRING), states.count(AlertState.PENDING), failing


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.0f} MiB"


def main() -> None:
    """Build the store, run the service's rounds and every query alone, print a table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="steady rounds to time")
    parser.add_argument(
        "--scrapes", type=int, default=SCRAPES, help="scrapes (and rounds) of history first"
    )
    parser.add_argument("--no-alone", action="store_true", help="skip every query alone")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    cluster = Cluster(args.nodes, args.pods_per_node)
    with tempfile.TemporaryDirectory(prefix="bench-promql-") as state_dir:
        service = ServiceRules(RULES, cluster, Path(state_dir), args.scrapes)
        figures = _measure(service, cluster, args.rounds, not args.no_alone)
        service.store.close()
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        _print(figures)


def _measure(
    service: ServiceRules, cluster: Cluster, rounds: int, alone_too: bool
) -> dict[str, Any]:
    """Time ``rounds`` full rounds as the service runs them and, with ``alone_too``, every
    query of the round alone; the figures as a dict."""
    groups = service.manager.groups
    rules = [(rule.name, rule.expr) for g in groups for rule in g.spec.rules]
    store = service.store
    engine = Engine(store, ENGINE)
    # By position: several rules share a name (alerts at two severities, recording rules
    # per source), and each must count its own series.
    best: dict[int, tuple[float, int, str]] = {}
    alone: list[float] = []
    steady: list[Round] = []
    materialised: list[float] = []
    results: list[QueryResult] = []
    for _ in range(max(rounds, 1)):
        at = service.next_full_round()
        steady.append(service.round(at))
        if not alone_too:
            continue
        # Freeing the last round's result objects is not part of this round.
        results.clear()
        start = time.perf_counter()
        for i, (name, expr) in enumerate(rules):
            t = time.perf_counter()
            result = engine.instant(expr, at)
            took = time.perf_counter() - t
            results.append(result)
            if i not in best or took < best[i][0]:
                best[i] = (took, result.series_count, name)
        alone.append(time.perf_counter() - start)
        # What a consumer that reads every series pays on top.
        start = time.perf_counter()
        for result in results:
            _ = result.series
        materialised.append(time.perf_counter() - start)
    stats = store.stats()
    firing, pending, failing = service.alert_counts()
    creation = service.creation_round()
    return {
        "nodes": cluster.nodes,
        "pods": len(cluster.pods),
        "series": stats.series,
        "samples": stats.head_samples + stats.block_samples,
        "built_s": service.built_s,
        "history_rounds": len(service.history),
        "history_s": service.history_s,
        "groups": len(groups),
        "rules": len(rules),
        "rules_returning": sum(1 for _, n, _ in best.values() if n),
        "first_round_s": creation.seconds,
        "first_round_cpu_s": creation.cpu_seconds,
        "first_round_alerts_added": creation.alerts_added,
        "first_round_peak_rise_bytes": creation.peak_rise_bytes,
        "steady_round_s": min(r.seconds for r in steady),
        "steady_rounds_s": [r.seconds for r in steady],
        "steady_round_cpu_s": min(r.cpu_seconds for r in steady),
        "steady_rounds_cpu_s": [r.cpu_seconds for r in steady],
        "steady_peak_rise_bytes": max(
            (r.peak_rise_bytes for r in steady if r.peak_rise_bytes is not None), default=None
        ),
        "alerts_firing": firing,
        "alerts_pending": pending,
        "rules_failing": failing,
        "alone_s": min(alone) if alone else None,
        "alone_rounds_s": alone,
        "objects_s": min(materialised) if materialised else None,
        "result_series": sum(n for _, n, _ in best.values()),
        "slowest_alone": [
            {"rule": name, "seconds": seconds, "series": n}
            for seconds, n, name in sorted(best.values(), reverse=True)[:12]
        ],
    }


def _print(f: dict[str, Any]) -> None:
    """The figures as tables."""
    print(f"{'cluster':<34} {f['nodes']:,} nodes, {f['pods']:,} pods")
    print(f"{'series in store':<34} {f['series']:,}")
    print(f"{'samples in store':<34} {f['samples']:,}")
    print(
        f"{'store built in':<34} {f['built_s']:.1f} s "
        f"({f['history_s']:.1f} s of it {f['history_rounds']} rule rounds over its history)"
    )
    print(f"{'rules evaluated':<34} {f['rules']} in {f['groups']} groups")
    print()
    print(
        f"{'one evaluation round':<48} {'seconds':>8} {'CPU s':>8}   {'peak memory':>11}   rounds"
    )
    steady = ", ".join(f"{t:.3f}" for t in f["steady_rounds_s"])
    print(
        f"{'as the service runs it, steady (best)':<48} {f['steady_round_s']:>8.3f} "
        f"{f['steady_round_cpu_s']:>8.3f}   "
        f"{_mib(f['steady_peak_rise_bytes']):>11}   {steady}   alerts: "
        f"{f['alerts_firing']:,} firing, {f['alerts_pending']:,} pending; "
        f"{f['rules_failing']} rules failing"
    )
    print(
        f"{'as the service runs it, first (alerts created)':<48} {f['first_round_s']:>8.3f} "
        f"{f['first_round_cpu_s']:>8.3f}   "
        f"{_mib(f['first_round_peak_rise_bytes']):>11}   "
        f"{f['first_round_alerts_added']:,} alerts added"
    )
    if f["alone_s"] is None:
        return
    each = ", ".join(f"{t:.3f}" for t in f["alone_rounds_s"])
    print(f"{'every query alone (best)':<48} {f['alone_s']:>8.3f} {'':>8}   {'':>11}   {each}")
    print(
        f"{'+ every result series as objects':<48} {f['objects_s']:>8.3f} {'':>8}   {'':>11}   "
        f"({f['result_series']:,} series)"
    )
    print()
    print(f"{'slowest rules, alone (best of rounds)':<72} {'seconds':>8} {'series':>8}")
    for row in f["slowest_alone"]:
        print(f"{row['rule']:<72} {row['seconds']:>8.3f} {row['series']:>8,}")


if __name__ == "__main__":
    main()
