"""Node objects and their lifecycle: Ready, NotReady (taints, eviction) and back."""

from __future__ import annotations

import hashlib
from typing import Any

from runtime.quantity import format_bytes, format_cpu
from simulator.context import StepContext, is_active
from simulator.objects import KubeObject, clone, rfc3339
from simulator.runtime import NodeRuntime
from simulator.scenario import NodeGroup

__all__ = ["evict_pods", "node_object", "set_node_ready"]

KUBELET_VERSION = "v1.33.0"


def _conditions(ready: bool, now: float, previous: list[dict[str, Any]] | None) -> list[Any]:
    prev = {c.get("type"): c for c in previous or []}

    def cond(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
        old = prev.get(type_)
        since = old["lastTransitionTime"] if old and old.get("status") == status else (rfc3339(now))
        return {
            "type": type_,
            "status": status,
            "lastHeartbeatTime": rfc3339(now),
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        }

    if not ready:
        unknown = "Kubelet stopped posting node status."
        return [
            cond(t, "Unknown", "NodeStatusUnknown", unknown)
            for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
        ]
    return [
        cond(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]


def _digest(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def node_object(group: NodeGroup, name: str, runtime: NodeRuntime, now: float) -> KubeObject:
    """A Node as a kubelet registers it."""
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": group.instance_type,
        "topology.kubernetes.io/region": group.zone.rsplit("-", 1)[0],
        "topology.kubernetes.io/zone": group.zone,
        **{f"node-role.kubernetes.io/{role}": "" for role in group.roles},
        **group.labels,
    }
    resources = {
        "cpu": format_cpu(group.cpu),
        "memory": format_bytes(group.memory),
        "pods": str(group.pods),
        "ephemeral-storage": "100Gi",
    }
    cidr = f"10.{244 + runtime.index // 256}.{runtime.index % 256}.0/24"
    spec: dict[str, Any] = {"podCIDR": cidr, "podCIDRs": [cidr]}
    if group.taints:
        spec["taints"] = [dict(t) for t in group.taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": _conditions(True, now, None),
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": runtime.port}},
            "nodeInfo": {
                "machineID": _digest(name),
                "systemUUID": _digest(name + "/uuid"),
                "bootID": _digest(name + "/boot"),
                "kernelVersion": "6.8.0-sim",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://2.0.4",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def set_node_ready(ctx: StepContext, node: KubeObject, runtime: NodeRuntime, ready: bool) -> None:
    """Mark a node Ready or unreachable (with the taints the node controller adds)."""
    runtime.ready = ready
    runtime.down_since = None if ready else ctx.now
    new = clone(node)
    status = new.setdefault("status", {})
    status["conditions"] = _conditions(ready, ctx.now, status.get("conditions"))
    taints = [
        t
        for t in new["spec"].get("taints") or []
        if t.get("key") != "node.kubernetes.io/unreachable"
    ]
    if not ready:
        taints += [
            {
                "key": "node.kubernetes.io/unreachable",
                "effect": "NoSchedule",
                "timeAdded": rfc3339(ctx.now),
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "effect": "NoExecute",
                "timeAdded": rfc3339(ctx.now),
            },
        ]
    if taints:
        new["spec"]["taints"] = taints
    else:
        new["spec"].pop("taints", None)
    stored = ctx.writer.put(ctx.kinds.node, new)
    if ready:
        runtime.pods.clear()
        ctx.writer.event(
            stored, "NodeReady", f"Node {runtime.name} status is now: NodeReady", ctx.now
        )
    else:
        ctx.writer.event(
            stored,
            "NodeNotReady",
            f"Node {runtime.name} status is now: NodeNotReady",
            ctx.now,
            "Normal",
            "node-controller",
        )


def evict_pods(ctx: StepContext, node_name: str) -> int:
    """Delete the active pods of an unreachable node, as the taint manager does."""
    evicted = 0
    for pod in ctx.objects(ctx.kinds.pod):
        if pod["spec"].get("nodeName") != node_name or not is_active(pod):
            continue
        m = pod["metadata"]
        ctx.writer.event(
            pod,
            "TaintManagerEviction",
            f"Marking for deletion Pod {m['namespace']}/{m['name']}",
            ctx.now,
            component="taint-controller",
        )
        ctx.writer.delete(ctx.kinds.pod, m["namespace"], m["name"])
        evicted += 1
    return evicted
