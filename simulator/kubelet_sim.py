"""The kubelets' behaviour: starting pods, readiness, Job exits, resizes, usage and OOM kills.

Each step the kubelets look at the pods bound to their nodes, move them through their
lifecycle (writing pod status only on transitions), and integrate each container's CPU and
memory over the step from its workload's demand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.quantity import format_bytes, format_cpu, parse_quantity
from simulator.admission import resize_restart_policy
from simulator.context import WORKLOAD_ANNOTATION, StepContext, is_active
from simulator.load import LoadSource
from simulator.objects import KubeObject, clone, rfc3339
from simulator.runtime import ContainerRuntime, NodeRuntime, PodRuntime
from simulator.scenario import MemorySpec
from simulator.usage import memory_working_set, step_cpu

__all__ = ["Behaviour", "Kubelets"]

IDLE_CPU = 0.002  # cores a container uses doing nothing
IDLE_MEMORY = 24 * 2**20
DEFAULT_STARTUP = 5.0
RESIZE_SECONDS = 5.0  # how long the runtime takes to apply an accepted resize


@dataclass(frozen=True)
class Behaviour:
    """How a scenario workload's pods behave."""

    load: LoadSource | None
    memory: MemorySpec
    startup: float
    job_seconds: float
    failure_rate: float


def _resources(c: dict[str, Any]) -> tuple[float, float | None, float, float | None]:
    res = c.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    return (
        parse_quantity(req.get("cpu", lim.get("cpu", 0))),
        parse_quantity(lim["cpu"]) if "cpu" in lim else None,
        parse_quantity(req.get("memory", lim.get("memory", 0))),
        parse_quantity(lim["memory"]) if "memory" in lim else None,
    )


def _container_id(pod_uid: str, name: str, restarts: int) -> str:
    digest = hashlib.sha256(f"{pod_uid}/{name}/{restarts}".encode()).hexdigest()
    return f"containerd://{digest}"


def _resource_map(
    cpu: float, cpu_limit: float | None, mem: float, mem_limit: float | None
) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"requests": {}}
    if cpu:
        out["requests"]["cpu"] = format_cpu(cpu)
    if mem:
        out["requests"]["memory"] = format_bytes(mem)
    limits = {}
    if cpu_limit is not None:
        limits["cpu"] = format_cpu(cpu_limit)
    if mem_limit is not None:
        limits["memory"] = format_bytes(mem_limit)
    if limits:
        out["limits"] = limits
    if not out["requests"]:
        del out["requests"]
    return out


class Kubelets:
    """Every node's kubelet, stepped together."""

    def __init__(self, behaviours: dict[tuple[str, str], Behaviour], start: float) -> None:
        self.nodes: dict[str, NodeRuntime] = {}
        self.behaviours = behaviours
        self.start = start
        self.last_step = start
        # The pod network's address of a starting pod (the cluster's: on loopback).
        self.assign_ip: Callable[[NodeRuntime, KubeObject], str] | None = None

    def behaviour_of(self, pod: KubeObject) -> tuple[tuple[str, str] | None, Behaviour | None]:
        ref = (pod["metadata"].get("annotations") or {}).get(WORKLOAD_ANNOTATION) or ""
        if "/" not in ref:
            return None, None
        ns, name = ref.split("/", 1)
        return (ns, name), self.behaviours.get((ns, name))

    # -- lifecycle -------------------------------------------------------------------------

    def sync(self, ctx: StepContext) -> None:
        """Start, finish, resize and drop pods to match the API."""
        now = ctx.now
        live: dict[str, KubeObject] = {}
        for pod in ctx.objects(ctx.kinds.pod):
            node = self.nodes.get(pod["spec"].get("nodeName") or "")
            if node is None:
                continue
            uid = pod["metadata"]["uid"]
            live[uid] = pod
            if not node.ready:
                continue
            runtime = node.pods.get(uid)
            if runtime is None:
                if is_active(pod):
                    self._start(ctx, node, pod)
                continue
            if runtime.done:
                continue
            if runtime.finish_at is not None and now >= runtime.finish_at:
                self._finish(ctx, node, pod, runtime)
                continue
            self._resize(ctx, node, pod, runtime)
            if not runtime.ready and now >= runtime.ready_at:
                runtime.ready = True
                self._write_status(ctx, node, pod, runtime)
        for node in self.nodes.values():
            for uid in [u for u in node.pods if u not in live]:
                del node.pods[uid]

    def _start(self, ctx: StepContext, node: NodeRuntime, pod: KubeObject) -> None:
        now = ctx.now
        workload, behaviour = self.behaviour_of(pod)
        startup = behaviour.startup if behaviour else DEFAULT_STARTUP
        containers = []
        for c in pod["spec"].get("containers") or []:
            cpu, cpu_limit, mem, mem_limit = _resources(c)
            containers.append(
                ContainerRuntime(
                    name=c["name"],
                    image=c.get("image", ""),
                    container_id=_container_id(pod["metadata"]["uid"], c["name"], 0),
                    start_time=now,
                    cpu_request=cpu,
                    cpu_limit=cpu_limit,
                    memory_request=mem,
                    memory_limit=mem_limit,
                    ready_at=now + startup,
                )
            )
        is_job = any(
            ref.get("kind") == "Job" for ref in pod["metadata"].get("ownerReferences") or []
        )
        finish_at = fails = None
        if is_job:
            seconds = behaviour.job_seconds if behaviour else 30.0
            finish_at = now + seconds
            fails = bool(behaviour and ctx.rng.random() < behaviour.failure_rate)
        runtime = PodRuntime(
            uid=pod["metadata"]["uid"],
            namespace=pod["metadata"]["namespace"],
            name=pod["metadata"]["name"],
            node=node.name,
            workload=workload,
            start_time=now,
            ready_at=now + startup,
            finish_at=finish_at,
            fails=bool(fails),
            containers=containers,
            ready=startup <= 0,
        )
        node.pods[runtime.uid] = runtime
        node.next_ip += 1
        ip = self.assign_ip(node, pod) if self.assign_ip is not None else self._pod_ip(node)
        stored = self._write_status(ctx, node, pod, runtime, pod_ip=ip)
        for c in containers:
            ctx.writer.event(stored, "Started", f"Started container {c.name}", now)

    def _pod_ip(self, node: NodeRuntime) -> str:
        return f"10.{244 + node.index // 256}.{node.index % 256}.{node.next_ip % 254 + 1}"

    def _finish(self, ctx: StepContext, node: NodeRuntime, pod: KubeObject, rt: PodRuntime) -> None:
        rt.done = True
        rt.ready = False
        for c in rt.containers:
            c.usage.cpu_rate = 0.0
            c.usage.memory = 0.0
        self._write_status(ctx, node, pod, rt)

    def _resize(self, ctx: StepContext, node: NodeRuntime, pod: KubeObject, rt: PodRuntime) -> None:
        """Admit, defer or refuse a resize as the kubelet does (KEP-1287): the pod must fit the
        node's allocatable (else Infeasible) and its free room (else Deferred, re-evaluated
        every sync); an accepted resize is in progress for ``RESIZE_SECONDS``."""
        if rt.resizing_until is not None:
            if ctx.now >= rt.resizing_until:
                self._resize_done(ctx, node, pod, rt)
            return
        spec_containers = {c["name"]: c for c in pod["spec"].get("containers") or []}
        wanted = {name: _resources(c) for name, c in spec_containers.items()}
        changes = {
            c.name: wanted[c.name]
            for c in rt.containers
            if c.name in wanted
            and wanted[c.name] != (c.cpu_request, c.cpu_limit, c.memory_request, c.memory_limit)
        }
        if not changes:
            if rt.pending is not None:  # the spec went back to what runs
                rt.pending = None
                self._write_status(ctx, node, pod, rt)
            return
        extra_cpu = sum(
            w[0] - c.cpu_request for c in rt.containers if (w := changes.get(c.name)) is not None
        )
        extra_mem = sum(
            w[2] - c.memory_request for c in rt.containers if (w := changes.get(c.name)) is not None
        )
        used_cpu = sum(
            c.cpu_request for p in node.pods.values() if not p.done for c in p.containers
        )
        used_mem = sum(
            c.memory_request for p in node.pods.values() if not p.done for c in p.containers
        )
        pod_cpu = sum(c.cpu_request for c in rt.containers) + extra_cpu
        pod_mem = sum(c.memory_request for c in rt.containers) + extra_mem
        if pod_cpu > node.cpu or pod_mem > node.memory:
            self._pending(
                ctx,
                node,
                pod,
                rt,
                "Infeasible",
                f"Node didn't have enough capacity: requested {format_cpu(pod_cpu)}"
                f" cpu, {format_bytes(pod_mem)} memory",
            )
            return
        if used_cpu + extra_cpu > node.cpu or used_mem + extra_mem > node.memory:
            self._pending(
                ctx, node, pod, rt, "Deferred", "Node didn't have enough resource: cpu or memory"
            )
            return
        rt.pending = None
        rt.actual = {
            c.name: (c.cpu_request, c.cpu_limit, c.memory_request, c.memory_limit)
            for c in rt.containers
        }
        rt.restart_on_resize = set()
        for c in rt.containers:
            if c.name not in changes:
                continue
            old = (c.cpu_request, c.cpu_limit, c.memory_request, c.memory_limit)
            new = changes[c.name]
            changed = {"cpu"} if old[:2] != new[:2] else set()
            if old[2:] != new[2:]:
                changed.add("memory")
            if any(
                resize_restart_policy(spec_containers[c.name], r) == "RestartContainer"
                for r in changed
            ):
                rt.restart_on_resize.add(c.name)
            c.cpu_request, c.cpu_limit, c.memory_request, c.memory_limit = new
        rt.resizing_until = ctx.now + RESIZE_SECONDS
        self._write_status(ctx, node, pod, rt)

    def _pending(
        self,
        ctx: StepContext,
        node: NodeRuntime,
        pod: KubeObject,
        rt: PodRuntime,
        reason: str,
        message: str,
    ) -> None:
        if rt.pending == (reason, message):
            return  # already said: no status write per sync
        rt.pending = (reason, message)
        stored = self._write_status(ctx, node, pod, rt)
        ctx.writer.event(stored, f"Resize{reason}", message, ctx.now, "Warning")

    def _resize_done(
        self, ctx: StepContext, node: NodeRuntime, pod: KubeObject, rt: PodRuntime
    ) -> None:
        """The runtime has applied the resize; ``RestartContainer`` containers restarted."""
        now = ctx.now
        _, behaviour = self.behaviour_of(pod)
        startup = behaviour.startup if behaviour else DEFAULT_STARTUP
        for c in rt.containers:
            if c.name in rt.restart_on_resize:
                c.restarts += 1
                c.container_id = _container_id(rt.uid, c.name, c.restarts)
                c.start_time = now
                c.ready_at = now + startup
                c.usage = type(c.usage)()
                rt.ready = startup <= 0
                rt.ready_at = now + startup
        restarted = sorted(rt.restart_on_resize)
        rt.resizing_until = None
        rt.actual = None
        rt.restart_on_resize = set()
        stored = self._write_status(ctx, node, pod, rt)
        for name in restarted:
            ctx.writer.event(stored, "Started", f"Started container {name}", now)
        ctx.writer.event(stored, "ResizeCompleted", "Pod resize completed", now)

    # -- status ----------------------------------------------------------------------------

    def _write_status(
        self,
        ctx: StepContext,
        node: NodeRuntime,
        pod: KubeObject,
        rt: PodRuntime,
        pod_ip: str | None = None,
        oom: dict[str, dict[str, Any]] | None = None,
    ) -> KubeObject:
        now = ctx.now
        old = pod.get("status") or {}
        status: dict[str, Any] = dict(old)
        if rt.done:
            status["phase"] = "Failed" if rt.fails else "Succeeded"
        else:
            status["phase"] = "Running"
        ip = pod_ip or old.get("podIP") or self._pod_ip(node)
        status.update(
            hostIP="127.0.0.1",
            hostIPs=[{"ip": "127.0.0.1"}],
            podIP=ip,
            podIPs=[{"ip": ip}],
            startTime=old.get("startTime") or rfc3339(rt.start_time),
        )
        ready = "True" if rt.ready and not rt.done else "False"
        previous = {c.get("type"): c for c in old.get("conditions") or []}

        def cond(
            type_: str, value: str, reason: str | None = None, message: str | None = None
        ) -> dict[str, Any]:
            prev = previous.get(type_)
            since = (
                prev["lastTransitionTime"]
                if prev and prev.get("status") == value
                else (rfc3339(now))
            )
            entry: dict[str, Any] = {
                "type": type_,
                "status": value,
                "lastProbeTime": None,
                "lastTransitionTime": since,
            }
            if reason:
                entry["reason"] = reason
            if message:
                entry["message"] = message
            return entry

        conditions = [
            cond("PodReadyToStartContainers", "False" if rt.done else "True"),
            cond("Initialized", "True", "PodCompleted" if rt.done else None),
            cond(
                "Ready",
                ready,
                "PodCompleted" if rt.done else (None if ready == "True" else "ContainersNotReady"),
            ),
            cond("ContainersReady", ready),
            cond("PodScheduled", "True"),
        ]
        if rt.pending is not None:
            conditions.append(cond("PodResizePending", "True", *rt.pending))
        if rt.resizing_until is not None:
            conditions.append(cond("PodResizeInProgress", "True"))
        status["conditions"] = conditions
        old_statuses = {s.get("name"): s for s in old.get("containerStatuses") or []}
        statuses = []
        for c in rt.containers:
            prev = old_statuses.get(c.name) or {}
            if rt.done:
                state: dict[str, Any] = {
                    "terminated": {
                        "exitCode": 1 if rt.fails else 0,
                        "reason": "Error" if rt.fails else "Completed",
                        "startedAt": rfc3339(c.start_time),
                        "finishedAt": rfc3339(now),
                        "containerID": c.container_id,
                    }
                }
            else:
                state = {"running": {"startedAt": rfc3339(c.start_time)}}
            entry: dict[str, Any] = {
                "name": c.name,
                "image": c.image,
                "imageID": f"{c.image.split(':')[0]}@sha256:{'0' * 64}",
                "containerID": c.container_id,
                "ready": ready == "True",
                "started": not rt.done,
                "restartCount": c.restarts,
                "state": state,
                "lastState": (oom or {}).get(c.name) or prev.get("lastState") or {},
                # What runs (the old size while a resize is applied); allocated is the new.
                "resources": _resource_map(
                    *(
                        (rt.actual or {}).get(c.name)
                        or (c.cpu_request, c.cpu_limit, c.memory_request, c.memory_limit)
                    )
                ),
                "allocatedResources": {
                    k: v
                    for k, v in (
                        ("cpu", format_cpu(c.cpu_request)),
                        ("memory", format_bytes(c.memory_request)),
                    )
                    if v != "0"
                },
            }
            statuses.append(entry)
        status["containerStatuses"] = statuses
        new = clone(pod)
        new["status"] = status
        return ctx.writer.put(ctx.kinds.pod, new)

    # -- usage -----------------------------------------------------------------------------

    def step_usage(self, ctx: StepContext, dt: float) -> None:
        """Integrate every running container's usage over the last ``dt`` seconds."""
        now = ctx.now
        t = now - self.start
        ready_count: dict[tuple[str, str], int] = {}
        for node in self.nodes.values():
            if not node.ready:
                continue
            for p in node.pods.values():
                if p.ready and not p.done and p.workload is not None:
                    ready_count[p.workload] = ready_count.get(p.workload, 0) + 1
        demand_per_pod: dict[tuple[str, str], float] = {}
        for key, count in ready_count.items():
            b = self.behaviours.get(key)
            if b is not None and b.load is not None:
                demand_per_pod[key] = b.load.demand(t) / count
        pods_by_uid: dict[str, KubeObject] | None = None
        for node in self.nodes.values():
            if not node.ready:
                for p in node.pods.values():
                    for c in p.containers:
                        c.usage.cpu_rate = 0.0
                continue
            node.system_cpu_seconds += NodeRuntime.SYSTEM_CPU * dt
            wants: list[tuple[PodRuntime, ContainerRuntime, float]] = []
            for p in node.pods.values():
                if p.done:
                    continue
                share = demand_per_pod.get(p.workload, 0.0) if (p.workload and p.ready) else 0.0
                for i, c in enumerate(p.containers):
                    wants.append((p, c, (share if i == 0 else 0.0) + IDLE_CPU))
            total = sum(w for _, _, w in wants)
            # Demand beyond the node's cores is shared out proportionally.
            factor = min(1.0, node.cpu / total) if total > 0 else 1.0
            for p, c, want in wants:
                used = step_cpu(c.usage, want * factor, c.cpu_limit, dt)
                b = self.behaviours.get(p.workload) if p.workload else None
                if b is None:
                    c.usage.memory = IDLE_MEMORY
                    continue
                c.usage.memory = memory_working_set(
                    b.memory.base,
                    b.memory.per_core,
                    b.memory.leak_per_hour,
                    used,
                    now - c.start_time,
                )
                if c.memory_limit is not None and c.usage.memory > c.memory_limit:
                    if pods_by_uid is None:
                        pods_by_uid = {s["metadata"]["uid"]: s for s in ctx.objects(ctx.kinds.pod)}
                    pod = pods_by_uid.get(p.uid)
                    if pod is not None:
                        self._oom_kill(ctx, node, pod, p, c, b)
        self.last_step = now

    def _oom_kill(
        self,
        ctx: StepContext,
        node: NodeRuntime,
        pod: KubeObject,
        p: PodRuntime,
        c: ContainerRuntime,
        b: Behaviour,
    ) -> None:
        now = ctx.now
        last_state = {
            "terminated": {
                "exitCode": 137,
                "reason": "OOMKilled",
                "startedAt": rfc3339(c.start_time),
                "finishedAt": rfc3339(now),
                "containerID": c.container_id,
            }
        }
        c.restarts += 1
        c.container_id = _container_id(p.uid, c.name, c.restarts)
        c.start_time = now
        c.ready_at = now + b.startup
        c.usage = type(c.usage)()
        p.ready = b.startup <= 0
        p.ready_at = now + b.startup
        stored = self._write_status(ctx, node, pod, p, oom={c.name: last_state})
        ctx.writer.event(
            stored,
            "OOMKilling",
            f"Memory cgroup out of memory: Killed process of container {c.name}",
            now,
            "Warning",
            "kernel-monitor",
        )
