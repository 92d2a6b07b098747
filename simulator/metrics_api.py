"""``metrics.k8s.io/v1beta1`` NodeMetrics and PodMetrics (what ``kubectl top`` reads)."""

from __future__ import annotations

from simulator.objects import KubeObject, rfc3339
from simulator.resources import ResourceType
from simulator.runtime import NodeRuntime

__all__ = ["metrics_objects"]

WINDOW = "10s"


def _cpu(cores: float) -> str:
    return f"{int(cores * 1e9)}n"


def _memory(size: float) -> str:
    return f"{int(size) // 1024}Ki"


def metrics_objects(
    rt: ResourceType,
    nodes: dict[str, NodeRuntime],
    namespace: str,
    name: str | None,
    now: float,
) -> list[KubeObject]:
    """NodeMetrics or PodMetrics for one object (``name``) or all of them (in ``namespace``)."""
    stamp = rfc3339(now)
    out: list[KubeObject] = []
    if rt.kind == "NodeMetrics":
        for node in nodes.values():
            if not node.ready or (name is not None and node.name != name):
                continue
            cpu = NodeRuntime.SYSTEM_CPU + sum(p.cpu_rate for p in node.pods.values() if not p.done)
            out.append(
                {
                    "kind": "NodeMetrics",
                    "apiVersion": rt.api_version,
                    "metadata": {"name": node.name, "creationTimestamp": stamp},
                    "timestamp": stamp,
                    "window": WINDOW,
                    "usage": {"cpu": _cpu(cpu), "memory": _memory(node.memory_used)},
                }
            )
        return out
    for node in nodes.values():
        if not node.ready:
            continue
        for p in node.pods.values():
            if p.done or (namespace and p.namespace != namespace):
                continue
            if name is not None and p.name != name:
                continue
            out.append(
                {
                    "kind": "PodMetrics",
                    "apiVersion": rt.api_version,
                    "metadata": {
                        "name": p.name,
                        "namespace": p.namespace,
                        "creationTimestamp": stamp,
                    },
                    "timestamp": stamp,
                    "window": WINDOW,
                    "containers": [
                        {
                            "name": c.name,
                            "usage": {
                                "cpu": _cpu(c.usage.cpu_rate),
                                "memory": _memory(c.usage.memory),
                            },
                        }
                        for c in p.containers
                    ],
                }
            )
    out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    return out
