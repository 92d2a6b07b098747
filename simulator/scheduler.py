"""The scheduler: binds pending pods to the least-allocated node that fits them."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from runtime.quantity import parse_quantity
from simulator.context import StepContext, is_active
from simulator.objects import KubeObject, clone, rfc3339

__all__ = ["pod_requests", "schedule_pending"]


def pod_requests(pod: KubeObject) -> tuple[float, float]:
    """(CPU cores, memory bytes) the pod's containers request."""
    cpu = mem = 0.0
    for c in pod.get("spec", {}).get("containers") or []:
        requests = (c.get("resources") or {}).get("requests") or {}
        cpu += parse_quantity(requests.get("cpu", 0))
        mem += parse_quantity(requests.get("memory", 0))
    return cpu, mem


@dataclass
class _NodeRoom:
    name: str
    cpu: float
    memory: float
    pods: int
    labels: dict[str, str]
    used_cpu: float = 0.0
    used_memory: float = 0.0
    used_pods: int = 0
    reasons: list[str] = field(default_factory=list)

    def score(self) -> float:
        return max(
            self.used_cpu / self.cpu if self.cpu else 1.0,
            self.used_memory / self.memory if self.memory else 1.0,
        )

    def misfit(self, cpu: float, memory: float) -> str | None:
        if self.used_pods + 1 > self.pods:
            return "Too many pods"
        if self.used_cpu + cpu > self.cpu + 1e-9:
            return "Insufficient cpu"
        if self.used_memory + memory > self.memory + 1e-9:
            return "Insufficient memory"
        return None


def _schedulable(node: KubeObject) -> bool:
    if node.get("spec", {}).get("unschedulable"):
        return False
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute"):
            return False
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def _selects(labels: dict[str, str], selector: dict[str, Any] | None) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def schedule_pending(ctx: StepContext) -> None:
    """Bind every pending pod that fits somewhere; mark the others Unschedulable."""
    k = ctx.kinds
    pods = ctx.objects(k.pod)
    pending = [p for p in pods if not p["spec"].get("nodeName") and is_active(p)]
    if not pending:
        return
    rooms: dict[str, _NodeRoom] = {}
    for node in ctx.objects(k.node):
        alloc = (node.get("status") or {}).get("allocatable") or {}
        rooms[node["metadata"]["name"]] = (
            _NodeRoom(
                node["metadata"]["name"],
                parse_quantity(alloc.get("cpu", 0)),
                parse_quantity(alloc.get("memory", 0)),
                int(parse_quantity(alloc.get("pods", 110))),
                node["metadata"].get("labels") or {},
            )
            if _schedulable(node)
            else _NodeRoom(node["metadata"]["name"], 0, 0, 0, {})
        )
    for p in pods:
        room = rooms.get(p["spec"].get("nodeName") or "")
        if room is not None and is_active(p):
            cpu, mem = pod_requests(p)
            room.used_cpu += cpu
            room.used_memory += mem
            room.used_pods += 1
    usable = [r for r in rooms.values() if r.pods > 0]
    heap = [(r.score(), r.name) for r in usable]
    heapq.heapify(heap)
    for pod in sorted(pending, key=lambda p: p["metadata"].get("creationTimestamp", "")):
        cpu, mem = pod_requests(pod)
        selector = pod["spec"].get("nodeSelector")
        chosen: _NodeRoom | None = None
        skipped: list[tuple[float, str]] = []
        reasons: dict[str, int] = {}
        while heap:
            score, name = heapq.heappop(heap)
            room = rooms[name]
            if abs(score - room.score()) > 1e-12:
                heapq.heappush(heap, (room.score(), name))
                continue
            skipped.append((score, name))
            problem = (
                None
                if _selects(room.labels, selector)
                else ("didn't match Pod's node affinity/selector")
            )
            problem = problem or room.misfit(cpu, mem)
            if problem is None:
                chosen = room
                break
            reasons[problem] = reasons.get(problem, 0) + 1
        for entry in skipped:
            if chosen is None or entry[1] != chosen.name:
                heapq.heappush(heap, entry)
        if chosen is None:
            _mark_unschedulable(ctx, pod, len(rooms), reasons)
            continue
        chosen.used_cpu += cpu
        chosen.used_memory += mem
        chosen.used_pods += 1
        heapq.heappush(heap, (chosen.score(), chosen.name))
        _bind(ctx, pod, chosen.name)


def _bind(ctx: StepContext, pod: KubeObject, node: str) -> None:
    new = clone(pod)
    new["spec"]["nodeName"] = node
    status = new.setdefault("status", {})
    status["conditions"] = [
        c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
    ] + [
        {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339(ctx.now),
        }
    ]
    stored = ctx.writer.put(ctx.kinds.pod, new)
    m = pod["metadata"]
    ctx.writer.event(
        stored,
        "Scheduled",
        f"Successfully assigned {m['namespace']}/{m['name']} to {node}",
        ctx.now,
        component="default-scheduler",
    )


def _mark_unschedulable(
    ctx: StepContext, pod: KubeObject, total: int, reasons: dict[str, int]
) -> None:
    unready = total - sum(reasons.values())
    parts = [f"{n} {r}" for r, n in sorted(reasons.items())]
    if unready:
        parts.append(f"{unready} node(s) were unschedulable or not ready")
    message = f"0/{total} nodes are available: {', '.join(parts)}."
    current = next(
        (
            c
            for c in (pod.get("status") or {}).get("conditions") or []
            if c.get("type") == "PodScheduled"
        ),
        None,
    )
    if current is not None and current.get("message") == message:
        return
    new = clone(pod)
    status = new.setdefault("status", {})
    status["conditions"] = [
        c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
    ] + [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339(ctx.now),
        }
    ]
    stored = ctx.writer.put(ctx.kinds.pod, new)
    ctx.writer.event(stored, "FailedScheduling", message, ctx.now, "Warning", "default-scheduler")
