"""Container requests on the simulated cluster: in-place resize of a leaking worker."""

from __future__ import annotations

import asyncio
import itertools

from kubernetes import client as k8s

from runtime.quantity import parse_quantity
from tests.controller.conftest import Rig, pas

HOUR = 3600.0


def _worker(mode: str = "Auto", update: str = "InPlace") -> dict[str, object]:
    return {
        "targetRef": {"kind": "Deployment", "name": "worker"},
        "mode": mode,
        "vertical": {
            "updateMode": update,
            "controlledResources": ["memory"],
            "containerPolicies": [{"containerName": "*", "maxAllowed": {"memory": "2Gi"}}],
        },
    }


async def _worker_pod(rig: Rig) -> k8s.V1Pod:
    pods = await asyncio.to_thread(
        k8s.CoreV1Api(rig.api).list_namespaced_pod, "shop", label_selector="app=worker"
    )
    running = [p for p in pods.items if p.status.phase == "Running"]
    assert running
    return running[0]


async def test_a_leaking_worker_is_resized_in_place_with_its_limit(rig: Rig) -> None:
    await rig.create(pas("worker", _worker()))
    for _ in range(int(3 * HOUR / 120)):
        await rig.step(120)
    resizes = [a for a in rig.service.controller.actions_log if a["kind"] == "resize"]
    assert resizes
    pod = await _worker_pod(rig)
    [container] = pod.spec.containers
    request = parse_quantity(container.resources.requests["memory"])
    limit = parse_quantity(container.resources.limits["memory"])
    assert request > 128 * 2**20  # grown with the leak
    assert limit / request == 4.0  # 128Mi : 512Mi kept
    assert request <= 2 * 2**30
    status = await rig.status("worker")
    [rec] = status["recommendations"]
    assert rec["containerName"] == container.name
    assert rec["target"]["memory"].endswith("Mi")


async def test_vertical_recommend_only_reports(rig: Rig) -> None:
    await rig.create(pas("worker", _worker(mode="Recommend")))
    for _ in range(int(2 * HOUR / 120)):
        await rig.step(120)
    assert not rig.service.controller.actions_log
    pod = await _worker_pod(rig)
    assert pod.spec.containers[0].resources.requests["memory"] == "128Mi"
    status = await rig.status("worker")
    assert status["recommendations"][0]["target"]["memory"] != "128Mi"


async def test_recreate_patches_the_template_at_most_once_per_interval(rig: Rig) -> None:
    await rig.create(pas("worker", _worker(update="Recreate")))
    for _ in range(int(3 * HOUR / 120)):
        await rig.step(120)
    recreated = [a for a in rig.service.controller.actions_log if a["kind"] == "recreate"]
    # Decisions every 5 minutes, but one rolling restart per hour at most.
    assert 1 <= len(recreated) <= 3
    times = [a["time"] for a in recreated]
    assert all(b - a >= HOUR for a, b in itertools.pairwise(times))
    deployment = await asyncio.to_thread(rig.apps.read_namespaced_deployment, "worker", "shop")
    [container] = deployment.spec.template.spec.containers
    assert parse_quantity(container.resources.requests["memory"]) > 128 * 2**20
    assert container.resources.limits["memory"] != "512Mi"  # moved with the request


async def test_a_vpa_on_the_same_workload_is_a_conflict(rig: Rig) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "verticalpodautoscalers.autoscaling.k8s.io"},
        "spec": {
            "group": "autoscaling.k8s.io",
            "scope": "Namespaced",
            "names": {"kind": "VerticalPodAutoscaler", "plural": "verticalpodautoscalers"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    await asyncio.to_thread(k8s.ApiextensionsV1Api(rig.api).create_custom_resource_definition, crd)
    vpa = {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "worker", "namespace": "shop"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"}},
    }
    await asyncio.to_thread(
        rig.custom.create_namespaced_custom_object,
        "autoscaling.k8s.io",
        "v1",
        "shop",
        "verticalpodautoscalers",
        vpa,
    )
    await rig.create(pas("worker", _worker()))
    for _ in range(int(HOUR / 120)):
        await rig.step(120)
    assert not rig.service.controller.actions_log
    conflict = {c["type"]: c for c in (await rig.status("worker"))["conditions"]}[
        "ConflictingAutoscaler"
    ]
    assert conflict["status"] == "True" and "VerticalPodAutoscaler" in conflict["message"]
