"""In-place resize end to end on the simulated cluster, with Kubernetes 1.33's semantics: the
subresource missing, Infeasible, Deferred, resizePolicy RestartContainer, and the
InPlaceOrRecreate fallback to the pod template. The official client, a virtual clock."""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from runtime.quantity import parse_quantity
from tests.controller.conftest import Rig, open_rig, pas

HOUR = 3600.0
STEP = 120.0
MI = 2**20

# One node of 1Gi: a worker leaking 1Gi an hour outgrows it in under an hour.
SMALL = """
name: resize
seed: 3
tick: 10s
podResize: {pod_resize}
nodes:
  - {{name: node, count: 1, cpu: "4", memory: {memory}}}
namespaces: [shop]
workloads:
  - name: worker
    namespace: shop
    replicas: 1
    requests: {{cpu: 100m, memory: 128Mi}}
    limits: {{cpu: 500m}}
    startupSeconds: 5
    load: {{pattern: constant, peak: 0.2, noise: 0}}
    memory: {{base: 100Mi, perCore: 0, leakPerHour: 1Gi}}
{extra}"""

FILLER = """  - name: filler
    namespace: shop
    replicas: 1
    requests: {cpu: 100m, memory: 1Gi}
    startupSeconds: 5
"""

# Oversized pods that use 100Mi of their 1Gi: the decision lowers memory, request and limit.
FAT = """
name: fat
seed: 3
tick: 10s
nodes:
  - {name: node, count: 2, cpu: "16", memory: 64Gi}
namespaces: [shop]
workloads:
""" + "".join(
    f"""  - name: {name}
    namespace: shop
    replicas: 1
    requests: {{cpu: 100m, memory: 1Gi}}
    limits: {{cpu: 500m, memory: 2Gi}}
    startupSeconds: 5
    load: {{pattern: constant, peak: 0.1, noise: 0}}
    memory: {{base: 100Mi, perCore: 0}}
{policy}"""
    for name, policy in (
        ("restarts", "    resizePolicy: {memory: RestartContainer}\n"),
        ("keeps", ""),
        ("recreates", ""),
    )
)


def _spec(name: str, update: str) -> dict[str, Any]:
    return {
        "targetRef": {"kind": "Deployment", "name": name},
        "mode": "Auto",
        "vertical": {
            "updateMode": update,
            "controlledResources": ["memory"],
            "containerPolicies": [{"containerName": "*", "maxAllowed": {"memory": "8Gi"}}],
        },
    }


def _small(pod_resize: bool = True, memory: str = "1Gi", extra: str = "") -> str:
    return SMALL.format(pod_resize=str(pod_resize).lower(), memory=memory, extra=extra)


async def _condition(rig: Rig, name: str, kind: str = "AbleToResize") -> dict[str, Any] | None:
    conditions = (await rig.status(name)).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), None)


async def _pod(rig: Rig, app: str) -> k8s.V1Pod:
    pods = await asyncio.to_thread(
        k8s.CoreV1Api(rig.api).list_namespaced_pod, "shop", label_selector=f"app={app}"
    )
    [pod] = [p for p in pods.items if p.status.phase == "Running"]
    return pod


def _actions(rig: Rig, kind: str, name: str = "worker") -> list[dict[str, Any]]:
    return [
        a
        for a in rig.service.controller.actions_log
        if a["kind"] == kind and a["autoscaler"] == f"shop/{name}"
    ]


async def _until(rig: Rig, name: str, reason: str, limit: float) -> float:
    """Step until the autoscaler's AbleToResize has ``reason``; the virtual time it did."""
    for _ in range(int(limit / STEP)):
        await rig.step(STEP)
        condition = await _condition(rig, name)
        if condition is not None and condition["reason"] == reason:
            return rig.clock.now()
    raise AssertionError(f"AbleToResize never became {reason} within {limit:g} s")


async def test_in_place_without_pods_resize_reports_and_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "autoscaler.controller.resize")
    async with open_rig(tmp_path, _small(pod_resize=False), history=()) as rig:
        await rig.create(pas("worker", _spec("worker", "InPlace")))
        for _ in range(int(HOUR / STEP)):
            await rig.step(STEP)
        controller = rig.service.controller
        assert controller.reconcile_errors == 0
        assert not controller.actions_log
        condition = await _condition(rig, "worker")
        assert condition is not None
        assert (condition["status"], condition["reason"]) == ("False", "InPlaceResizeUnavailable")
        assert "pods/resize" in condition["message"]
        assert "AbleToScale" not in {c["type"] for c in (await rig.status("worker"))["conditions"]}
        pod = await _pod(rig, "worker")
        assert pod.spec.containers[0].resources.requests["memory"] == "128Mi"
        # Asked once, remembered for the cluster: not every cycle.
        unserved = [r for r in caplog.records if "pods/resize is not served" in r.getMessage()]
        assert len(unserved) == 1


async def test_in_place_or_recreate_without_pods_resize_patches_the_template(
    tmp_path: Path,
) -> None:
    async with open_rig(tmp_path, _small(memory="8Gi"), history=()) as rig:
        rig.cluster.pod_resize = False  # switched off at run time, as a feature gate
        await rig.create(pas("worker", _spec("worker", "InPlaceOrRecreate")))
        await _until(rig, "worker", "RecreateFallback", HOUR)
        assert rig.service.controller.reconcile_errors == 0
        assert not _actions(rig, "resize")
        [recreate] = _actions(rig, "recreate")
        assert recreate["reason"] == "resize_unavailable"
        deployment = await asyncio.to_thread(rig.apps.read_namespaced_deployment, "worker", "shop")
        [container] = deployment.spec.template.spec.containers
        assert parse_quantity(container.resources.requests["memory"]) > 128 * MI


async def test_an_infeasible_resize_backs_off_and_says_so(tmp_path: Path) -> None:
    async with open_rig(tmp_path, _small(), history=()) as rig:
        await rig.create(pas("worker", _spec("worker", "InPlace")))
        first = await _until(rig, "worker", "ResizeInfeasible", 2 * HOUR)
        condition = await _condition(rig, "worker")
        assert condition is not None and condition["status"] == "False"
        assert "capacity" in condition["message"]
        resized_before = len(_actions(rig, "resize"))
        assert resized_before >= 3  # it grew in place until the node could not hold it
        for _ in range(int(1.5 * HOUR / STEP)):
            await rig.step(STEP)
        after = [a["time"] for a in _actions(rig, "resize") if a["time"] > first]
        # A new decision every 5 minutes, but retries back off: 5, 10, 20 minutes...
        assert 1 <= len(after) <= 4
        gaps = [b - a for a, b in itertools.pairwise([first, *after])]
        assert gaps == sorted(gaps) and gaps[0] >= 300
        assert rig.service.controller.reconcile_errors == 0
        assert not _actions(rig, "recreate")  # InPlace never recreates


async def test_in_place_or_recreate_patches_the_template_after_the_infeasible_timeout(
    tmp_path: Path,
) -> None:
    async with open_rig(tmp_path, _small(), history=()) as rig:
        await rig.create(pas("worker", _spec("worker", "InPlaceOrRecreate")))
        first = await _until(rig, "worker", "ResizeInfeasible", 2 * HOUR)
        fell_back = await _until(rig, "worker", "RecreateFallback", HOUR)
        timeout = rig.service.settings.controller.resize_infeasible_timeout_seconds
        assert fell_back - first >= timeout
        [recreate] = _actions(rig, "recreate")
        assert recreate["reason"] == "infeasible"
        deployment = await asyncio.to_thread(rig.apps.read_namespaced_deployment, "worker", "shop")
        [container] = deployment.spec.template.spec.containers
        assert parse_quantity(container.resources.requests["memory"]) > 1024 * MI
        assert rig.service.controller.reconcile_errors == 0


async def test_a_deferred_resize_waits_then_completes(tmp_path: Path) -> None:
    async with open_rig(tmp_path, _small(memory="2Gi", extra=FILLER), history=()) as rig:
        await rig.create(pas("worker", _spec("worker", "InPlace")))
        await _until(rig, "worker", "ResizeDeferred", 2 * HOUR)
        pod = await _pod(rig, "worker")
        pending = {c.type: c for c in pod.status.conditions}["PodResizePending"]
        assert pending.reason == "Deferred"
        wanted = pod.spec.containers[0].resources.requests["memory"]
        resized = len(_actions(rig, "resize"))
        for _ in range(int(0.25 * HOUR / STEP)):
            await rig.step(STEP)
        assert len(_actions(rig, "resize")) == resized  # waits: no new size sent meanwhile
        condition = await _condition(rig, "worker")
        assert condition is not None and condition["status"] == "True"
        await asyncio.to_thread(
            rig.apps.patch_namespaced_deployment_scale, "filler", "shop", {"spec": {"replicas": 0}}
        )
        await rig.step(60)
        pod = await _pod(rig, "worker")
        assert "PodResizePending" not in {c.type for c in pod.status.conditions}
        [status] = pod.status.container_statuses
        assert status.resources.requests["memory"] == wanted
        assert status.restart_count == 0
        assert rig.service.controller.reconcile_errors == 0


async def test_a_memory_decrease_restarts_only_with_restart_container(tmp_path: Path) -> None:
    async with open_rig(tmp_path, FAT, history=()) as rig:
        await rig.create(pas("restarts", _spec("restarts", "InPlace")))
        await rig.create(pas("keeps", _spec("keeps", "InPlace")))
        await rig.create(pas("recreates", _spec("recreates", "InPlaceOrRecreate")))
        reasons: dict[str, set[str]] = {"keeps": set(), "recreates": set()}
        for _ in range(int(HOUR / STEP)):
            await rig.step(STEP)
            for name, seen in reasons.items():
                condition = await _condition(rig, name)
                if condition is not None:
                    seen.add(condition["reason"])
        controller = rig.service.controller
        assert controller.reconcile_errors == 0

        # RestartContainer: request and limit fall in place, the container restarts once.
        [resize] = _actions(rig, "resize", "restarts")
        assert resize["restart"] is True
        assert any(k[:3] == ("shop", "restarts", "resize_restart") for k in controller.decisions)
        pod = await _pod(rig, "restarts")
        [container] = pod.spec.containers
        assert parse_quantity(container.resources.requests["memory"]) < 256 * MI
        assert parse_quantity(container.resources.limits["memory"]) < 512 * MI
        assert pod.status.container_statuses[0].restart_count == 1

        # NotRequired under InPlace: the request falls, the limit stays, no restart.
        [resize] = _actions(rig, "resize", "keeps")
        assert resize["restart"] is False
        pod = await _pod(rig, "keeps")
        [container] = pod.spec.containers
        assert parse_quantity(container.resources.requests["memory"]) < 256 * MI
        assert container.resources.limits["memory"] == "2Gi"
        assert pod.status.container_statuses[0].restart_count == 0
        assert "MemoryLimitKept" in reasons["keeps"]

        # NotRequired under InPlaceOrRecreate: the pod template, as the VPA falls back.
        assert not _actions(rig, "resize", "recreates")
        [recreate] = _actions(rig, "recreate", "recreates")
        assert recreate["reason"] == "memory_limit_decrease"
        assert "RecreateFallback" in reasons["recreates"]
        deployment = await asyncio.to_thread(
            rig.apps.read_namespaced_deployment, "recreates", "shop"
        )
        [container] = deployment.spec.template.spec.containers
        assert parse_quantity(container.resources.limits["memory"]) < 512 * MI
