"""What the collectors know, as metric families: one rendering for ``/metrics`` and the store.

Pure functions of the cluster model, the latest kubelet usage and the collectors' health.
``/metrics`` shows them at scrape time (:class:`runtime.families.FamiliesCollector`); the
collection cycle writes the same families to the store (:class:`tsdb.recorder.FamilyRecorder`),
so that a query means the same thing in both.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import TypeVar

from collectors.cluster import WatchHealth
from collectors.cluster_model import ClusterModel
from collectors.kubelet import NodeUsageView
from collectors.scrape import ScrapeHealth
from runtime import names
from runtime.families import Family, Kind
from tsdb import StoreStats

_Counters = TypeVar("_Counters", ScrapeHealth, WatchHealth)


def _family(families: dict[str, Family], name: str, kind: Kind, help_text: str) -> Family:
    family = families.get(name)
    if family is None:
        family = families[name] = Family(name, kind, help_text)
    return family


def usage_families(latest: Mapping[str, NodeUsageView], model: ClusterModel) -> list[Family]:
    """Node, pod, container and workload usage from the last kubelet scrapes."""
    f: dict[str, Family] = {}
    node_cpu = _family(f, names.NODE_CPU_CORES, "gauge", "CPU used by the node, in cores.")
    node_mem = _family(f, names.NODE_MEMORY, "gauge", "Memory working set of the node, in bytes.")
    pod_cpu = _family(f, names.POD_CPU_CORES, "gauge", "CPU used by the pod, in cores.")
    pod_mem = _family(f, names.POD_MEMORY, "gauge", "Memory working set of the pod, in bytes.")
    c_cpu = _family(f, names.CONTAINER_CPU_CORES, "gauge", "CPU used by the container, in cores.")
    c_mem = _family(
        f, names.CONTAINER_MEMORY, "gauge", "Memory working set of the container, in bytes."
    )
    w_cpu = _family(
        f, names.WORKLOAD_CPU_CORES, "gauge", "CPU used by all pods of a workload, in cores."
    )
    w_mem = _family(
        f, names.WORKLOAD_MEMORY, "gauge", "Memory working set of all pods of a workload, in bytes."
    )
    w_pods = _family(
        f, names.WORKLOAD_PODS_REPORTING, "gauge", "Pods of a workload whose usage was collected."
    )
    owners = {(p.namespace, p.name): model.workload_of(p) for p in model.pods()}
    totals: dict[tuple[str, str, str], list[float]] = {}
    # Hundreds of thousands of samples on a large cluster: appended directly, and the CPU
    # and memory samples of one pod or container share their label dict.
    pod_cpu_add, pod_mem_add = pod_cpu.samples.append, pod_mem.samples.append
    c_cpu_add, c_mem_add = c_cpu.samples.append, c_mem.samples.append
    for node, view in latest.items():
        node_cpu.add(view.node_cpu_cores, node=node)
        node_mem.add(view.node_memory_bytes, node=node)
        for (ns, pod), (cores, memory) in view.pods.items():
            labels = {"namespace": ns, "pod": pod, "node": node}
            if cores is not None:
                pod_cpu_add((labels, float(cores)))
            if memory is not None:
                pod_mem_add((labels, float(memory)))
            owner = owners.get((ns, pod))
            if owner is not None and cores is not None and memory is not None:
                total = totals.get((ns, owner[0], owner[1]))
                if total is None:
                    total = totals[(ns, owner[0], owner[1])] = [0.0, 0.0, 0.0]
                total[0] += cores
                total[1] += memory
                total[2] += 1
        for (ns, pod, container), (cores, memory) in view.containers.items():
            labels = {"namespace": ns, "pod": pod, "container": container, "node": node}
            if cores is not None:
                c_cpu_add((labels, float(cores)))
            if memory is not None:
                c_mem_add((labels, float(memory)))
    for (ns, kind, name), (cores, memory, count) in sorted(totals.items()):
        labels = {"namespace": ns, "workload_kind": kind, "workload": name}
        w_cpu.add(cores, **labels)
        w_mem.add(memory, **labels)
        w_pods.add(count, **labels)
    return list(f.values())


def cluster_families(model: ClusterModel) -> list[Family]:
    """Capacity, requests, limits, phases, restarts and replica counts from the API."""
    f: dict[str, Family] = {}
    cap = _family(f, names.NODE_CAPACITY, "gauge", "Node capacity (cores, bytes, pods).")
    alloc = _family(f, names.NODE_ALLOCATABLE, "gauge", "Node allocatable (cores, bytes, pods).")
    cond = _family(f, names.NODE_CONDITION, "gauge", "1 for each node condition's status.")
    info = _family(f, names.NODE_INFO, "gauge", "Node instance type and zone.")
    unsched = _family(f, names.NODE_UNSCHEDULABLE, "gauge", "1 if the node is cordoned.")
    for node in model.nodes():
        for resource, value in sorted(node.capacity.items()):
            cap.add(value, node=node.name, resource=resource)
        for resource, value in sorted(node.allocatable.items()):
            alloc.add(value, node=node.name, resource=resource)
        for condition, status in sorted(node.conditions.items()):
            cond.add(1, node=node.name, condition=condition, status=status.lower())
        info.add(1, node=node.name, instance_type=node.instance_type, zone=node.zone)
        unsched.add(float(node.unschedulable), node=node.name)

    phase = _family(f, names.POD_PHASE, "gauge", "1 for the pod's current phase.")
    ready = _family(f, names.POD_READY, "gauge", "1 if the pod is ready.")
    owner = _family(f, names.POD_OWNER, "gauge", "The workload a pod belongs to.")
    requests = _family(f, names.CONTAINER_REQUESTS, "gauge", "Container requests (cores, bytes).")
    limits = _family(f, names.CONTAINER_LIMITS, "gauge", "Container limits (cores, bytes).")
    restarts = _family(f, names.CONTAINER_RESTARTS, "counter", "Container restarts since creation.")
    terminated = _family(
        f,
        names.CONTAINER_LAST_TERMINATED,
        "gauge",
        "1 for the reason the container last ended (OOMKilled, Error...).",
    )
    for pod in model.pods():
        base = {"namespace": pod.namespace, "pod": pod.name}
        phase.add(1, **base, phase=pod.phase)
        ready.add(float(pod.ready), **base)
        workload = model.workload_of(pod)
        if workload is not None:
            owner.add(1, **base, node=pod.node, workload_kind=workload[0], workload=workload[1])
        for c in pod.containers:
            labels = {**base, "container": c.name, "node": pod.node}
            for resource, value in sorted(c.requests.items()):
                requests.add(value, **labels, resource=resource)
            for resource, value in sorted(c.limits.items()):
                limits.add(value, **labels, resource=resource)
            restarts.add(c.restarts, **labels)
            if c.last_termination_reason:
                terminated.add(1, **labels, reason=c.last_termination_reason)

    desired = _family(f, names.WORKLOAD_REPLICAS_DESIRED, "gauge", "Replicas asked for.")
    w_ready = _family(f, names.WORKLOAD_REPLICAS_READY, "gauge", "Replicas ready.")
    available = _family(f, names.WORKLOAD_REPLICAS_AVAILABLE, "gauge", "Replicas available.")
    updated = _family(f, names.WORKLOAD_REPLICAS_UPDATED, "gauge", "Replicas up to date.")
    job = _family(f, names.JOB_PODS, "gauge", "Job pods by status (active, succeeded, failed).")
    job_done = _family(f, names.JOB_COMPLETE, "gauge", "1 complete, 0 failed, absent running.")
    cron_last = _family(f, names.CRONJOB_LAST_SCHEDULE, "gauge", "Last time it fired.")
    cron_suspended = _family(f, names.CRONJOB_SUSPENDED, "gauge", "1 if suspended.")
    for w in model.workloads():
        labels = {"namespace": w.namespace, "workload_kind": w.kind, "workload": w.name}
        if w.kind == "Job":
            for status, count in (
                ("active", w.active),
                ("succeeded", w.succeeded),
                ("failed", w.failed),
            ):
                job.add(count, namespace=w.namespace, job=w.name, status=status)
            if w.complete is not None:
                job_done.add(float(w.complete), namespace=w.namespace, job=w.name)
            continue
        if w.kind == "CronJob":
            cron_last.add(w.last_schedule_time, namespace=w.namespace, cronjob=w.name)
            cron_suspended.add(float(w.suspended), namespace=w.namespace, cronjob=w.name)
            continue
        if w.kind == "ReplicaSet" and w.owner is not None:
            continue  # counted through its Deployment
        desired.add(w.desired, **labels)
        w_ready.add(w.ready, **labels)
        available.add(w.available, **labels)
        updated.add(w.updated, **labels)

    hpa = _family(f, names.HPA_INFO, "gauge", "HorizontalPodAutoscalers and their targets.")
    for h in model.hpas():
        hpa.add(
            1, namespace=h.namespace, hpa=h.name, target_kind=h.target_kind, target=h.target_name
        )
    return list(f.values())


def counters_copy(counters: _Counters) -> _Counters:
    """A copy of a dataclass of counters (:class:`ScrapeHealth`, :class:`WatchHealth`) that
    later counting no longer changes: taken on the loop, read in another thread."""
    out = copy.copy(counters)
    for f in fields(out):
        value = getattr(out, f.name)
        if isinstance(value, dict):
            setattr(out, f.name, dict(value))
    return out


def health_families(
    scrapes: Iterable[ScrapeHealth], watch: WatchHealth | None, store: StoreStats | None
) -> list[Family]:
    """The collectors' own health."""
    f: dict[str, Family] = {}
    duration = _family(
        f, names.SCRAPE_DURATION, "gauge", "Duration of the last scrape of a target."
    )
    up = _family(f, names.SCRAPE_TARGET_UP, "gauge", "1 if the last scrape succeeded.")
    last = _family(f, names.SCRAPE_LAST_SUCCESS, "gauge", "Last successful scrape.")
    errors = _family(f, names.SCRAPE_ERRORS, "counter", "Failed scrapes by reason.")
    attempts = _family(f, names.SCRAPE_ATTEMPTS, "counter", "Scrapes attempted.")
    rejected = _family(f, names.SCRAPE_SAMPLES_REJECTED, "counter", "Samples dropped, by reason.")
    cycle = _family(f, names.SCRAPE_CYCLE_DURATION, "gauge", "Duration of the last cycle.")
    for h in scrapes:
        for target, seconds in sorted(h.last_duration_s.items()):
            duration.add(seconds, job=h.job, target=target)
        for target, is_up in sorted(h.up.items()):
            up.add(float(is_up), job=h.job, target=target)
        for target, when in sorted(h.last_success_s.items()):
            last.add(when, job=h.job, target=target)
        for reason, n in sorted(h.errors.items()):
            errors.add(n, job=h.job, reason=reason)
        for reason, n in sorted(h.samples_rejected.items()):
            rejected.add(n, job=h.job, reason=reason)
        attempts.add(h.attempts, job=h.job)
        cycle.add(h.cycle_duration_s, job=h.job)
    if watch is not None:
        lists = _family(f, names.WATCH_LISTS, "counter", "Full lists, by kind.")
        gone = _family(f, names.WATCH_RELISTS_GONE, "counter", "Relists after 410 Gone, by kind.")
        events = _family(f, names.WATCH_EVENTS, "counter", "Watch events, by kind.")
        w_errors = _family(
            f, names.WATCH_ERRORS, "counter", "List/watch failures, by kind and reason."
        )
        for kind, n in sorted(watch.lists.items()):
            lists.add(n, kind=kind)
        for kind, n in sorted(watch.relists_gone.items()):
            gone.add(n, kind=kind)
        for kind, n in sorted(watch.events.items()):
            events.add(n, kind=kind)
        for (kind, reason), n in sorted(watch.errors.items()):
            w_errors.add(n, kind=kind, reason=reason)
    if store is not None:
        _family(f, names.STORE_SERIES, "gauge", "Series in the store.").add(store.series)
        samples = _family(f, names.STORE_SAMPLES, "gauge", "Samples held, by where.")
        samples.add(store.head_samples, where="head")
        samples.add(store.block_samples, where="blocks")
        _family(f, names.STORE_MEMORY, "gauge", "Memory held by samples.").add(store.memory_bytes)
        _family(f, names.STORE_DISK, "gauge", "Bytes of the data directory.").add(store.disk_bytes)
        _family(f, names.STORE_SAMPLES_APPENDED, "counter", "Samples appended.").add(
            store.samples_appended
        )
        dropped = _family(f, names.STORE_SAMPLES_REJECTED, "counter", "Samples refused, by reason.")
        for reason, n in sorted(store.samples_rejected.items()):
            dropped.add(n, reason=reason)
        # Every operation at 0 too, so that rate() over it works before the first failure.
        failures = _family(
            f,
            names.STORE_WRITE_FAILURES,
            "counter",
            "Failed disk writes of the store, by operation.",
        )
        failing = _family(
            f, names.STORE_WRITE_FAILING, "gauge", "1 while the store's disk writes fail."
        )
        for operation in ("flush", "seal", "maintain"):
            failures.add(store.write_failures.get(operation, 0), operation=operation)
        failing.add(float(bool(store.write_failing)))
    return list(f.values())
