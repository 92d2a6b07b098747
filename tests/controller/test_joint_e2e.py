"""Horizontal and vertical on one workload, on the simulated cluster: no fight.

Two workloads carry the same steady load: one is scaled on CPU alone, the other on CPU with
in-place CPU resizing as well. Before the joint decision the second went from 250m to 94m
and from 12 to 30 replicas within an hour, with 74 resizes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kubernetes import client as k8s

from runtime.quantity import parse_quantity
from tests.controller.conftest import open_rig, pas

HOUR = 3600.0

SCENARIO = """
name: joint
seed: 5
tick: 10s
nodes:
  - {name: node, count: 3, cpu: "16", memory: 64Gi}
namespaces: [shop]
workloads:
  - name: alone
    namespace: shop
    replicas: 12
    requests: {cpu: 250m, memory: 128Mi}
    limits: {cpu: "1", memory: 256Mi}
    startupSeconds: 30
    load: {pattern: constant, peak: 1.66, noise: 0.02}
    memory: {base: 64Mi, perCore: 32Mi}
  - name: joint
    namespace: shop
    replicas: 12
    requests: {cpu: 250m, memory: 128Mi}
    limits: {cpu: "1", memory: 256Mi}
    startupSeconds: 30
    load: {pattern: constant, peak: 1.66, noise: 0.02}
    memory: {base: 64Mi, perCore: 32Mi}
"""


def _spec(target: str, vertical: bool) -> dict[str, object]:
    spec: dict[str, object] = {
        "targetRef": {"kind": "Deployment", "name": target},
        "mode": "Auto",
        "horizontal": {
            "minReplicas": 2,
            "maxReplicas": 30,
            "metric": {"type": "CPU", "targetUtilization": 60},
        },
        "forecast": {"horizonSeconds": 90},
    }
    if vertical:
        spec["vertical"] = {"updateMode": "InPlace", "controlledResources": ["cpu", "memory"]}
    return spec


async def test_joint_scaling_ends_where_horizontal_alone_does(tmp_path: Path) -> None:
    async with open_rig(tmp_path, SCENARIO, history=("alone", "joint")) as rig:
        await rig.create(pas("alone", _spec("alone", vertical=False)))
        await rig.create(pas("joint", _spec("joint", vertical=True)))
        for _ in range(int(4 * HOUR / 120)):
            await rig.step(120)
        alone, joint = await rig.replicas("alone"), await rig.replicas("joint")
        assert abs(alone - joint) <= 2, (alone, joint)
        resizes = [
            a
            for a in rig.service.controller.actions_log
            if a["kind"] == "resize" and a["autoscaler"] == "shop/joint"
        ]
        # Memory may be sized once per pod; CPU belongs to the replica count in range.
        assert all("cpu" not in str(a["message"]) for a in resizes), resizes
        pods = await asyncio.to_thread(
            k8s.CoreV1Api(rig.api).list_namespaced_pod, "shop", label_selector="app=joint"
        )
        for pod in pods.items:
            cpu = pod.spec.containers[0].resources.requests["cpu"]
            assert parse_quantity(cpu) == 0.25
        status = await rig.status("joint")
        [rec] = status["recommendations"]
        assert rec["target"]["cpu"] == "250m"
        assert rec["reason"].startswith("horizontal_owns_resource")
        # A resize decision touches every pod at once; at steady load there is one (memory
        # sized to its use), far below six a day.
        assert len({a["time"] for a in resizes}) <= 1
