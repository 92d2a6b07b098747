"""In-place resize on the simulated cluster, as Kubernetes 1.33 does it, through the official
client: the subresource switched off (the 404 of a server without it), Infeasible, Deferred,
PodResizeInProgress, resizePolicy RestartContainer and the memory limit rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from runtime.clock import VirtualClock
from simulator.background import BackgroundCluster
from simulator.scenario import parse_scenario
from tests.simulator.conftest import api_client

SCENARIO = """
name: resize
seed: 1
tick: 10s
podResize: {pod_resize}
nodes:
  - {{name: node, count: 1, cpu: "4", memory: 2Gi}}
namespaces: [shop]
workloads:
  - name: app
    namespace: shop
    replicas: 1
    requests: {{cpu: 250m, memory: 256Mi}}
    limits: {{cpu: "1", memory: 512Mi}}
    startupSeconds: 5
    resizePolicy: {{memory: RestartContainer}}
  - name: plain
    namespace: shop
    replicas: 1
    requests: {{cpu: 250m, memory: 256Mi}}
    limits: {{cpu: "1", memory: 512Mi}}
    startupSeconds: 5
  - name: filler
    namespace: shop
    replicas: 1
    requests: {{cpu: 100m, memory: 1Gi}}
    startupSeconds: 5
"""


def _cluster(pod_resize: bool) -> Iterator[BackgroundCluster]:
    scenario = parse_scenario(SCENARIO.format(pod_resize=str(pod_resize).lower()), "resize.yaml")
    clock = VirtualClock(start=1_740_000_000.0, speed=None, autoadvance=False)
    with BackgroundCluster(scenario, clock) as bg:
        bg.advance(30)
        yield bg


@pytest.fixture
def rsim() -> Iterator[BackgroundCluster]:
    yield from _cluster(True)


@pytest.fixture
def core(rsim: BackgroundCluster) -> Iterator[client.CoreV1Api]:
    with api_client(rsim.api_url) as c:
        yield client.CoreV1Api(c)


def _pod(core: client.CoreV1Api, app: str) -> client.V1Pod:
    [pod] = core.list_namespaced_pod("shop", label_selector=f"app={app}").items
    return pod


def _resize(
    core: client.CoreV1Api, pod: str, requests: dict[str, str], limits: dict[str, str]
) -> None:
    resources = {"requests": requests, "limits": limits}
    body = {"spec": {"containers": [{"name": "app", "resources": resources}]}}
    core.patch_namespaced_pod_resize(pod, "shop", body)


def _conditions(pod: client.V1Pod) -> dict[str, Any]:
    return {c.type: c for c in pod.status.conditions}


def test_without_the_feature_the_subresource_is_a_404_and_not_discovered() -> None:
    for sim in _cluster(False):
        with api_client(sim.api_url) as c:
            core = client.CoreV1Api(c)
            name = _pod(core, "app").metadata.name
            with pytest.raises(ApiException) as e:
                _resize(core, name, {"cpu": "500m"}, {})
            assert e.value.status == 404
            # kube-apiserver's answer when go-restful has no route under /api/v1.
            assert json.loads(e.value.body) == {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "the server could not find the requested resource",
                "reason": "NotFound",
                "details": {
                    "causes": [
                        {"reason": "UnexpectedServerResponse", "message": "404: Page Not Found"}
                    ]
                },
                "code": 404,
            }
            names = {r.name for r in core.get_api_resources().resources}
            assert "pods/status" in names and "pods/resize" not in names
            # Switched on at run time through the simulator's API.
            url = f"{sim.api_url}/simulator/v1/features"
            assert httpx.get(url).json() == {"podResize": False}
            assert httpx.patch(url, json={"podResize": True}).json() == {"podResize": True}
            assert "pods/resize" in {r.name for r in core.get_api_resources().resources}
            assert httpx.patch(url, json={"podResize": 1}).status_code == 400
            _resize(core, name, {"cpu": "500m"}, {"cpu": "1"})


def test_a_resize_is_in_progress_for_one_sync_then_applied(
    rsim: BackgroundCluster, core: client.CoreV1Api
) -> None:
    name = _pod(core, "plain").metadata.name
    _resize(core, name, {"cpu": "500m", "memory": "384Mi"}, {"cpu": "1", "memory": "768Mi"})
    rsim.advance(10)
    pod = core.read_namespaced_pod(name, "shop")
    assert _conditions(pod)["PodResizeInProgress"].status == "True"
    [status] = pod.status.container_statuses
    assert status.allocated_resources == {"cpu": "500m", "memory": "384Mi"}
    assert status.resources.requests == {"cpu": "250m", "memory": "256Mi"}  # still running so
    rsim.advance(10)
    pod = core.read_namespaced_pod(name, "shop")
    assert "PodResizeInProgress" not in _conditions(pod)
    [status] = pod.status.container_statuses
    assert status.resources.requests == {"cpu": "500m", "memory": "384Mi"}
    assert status.restart_count == 0


def test_a_resize_larger_than_the_node_is_infeasible(
    rsim: BackgroundCluster, core: client.CoreV1Api
) -> None:
    name = _pod(core, "plain").metadata.name
    _resize(core, name, {"memory": "3Gi"}, {"memory": "4Gi"})
    rsim.advance(20)
    pending = _conditions(core.read_namespaced_pod(name, "shop"))["PodResizePending"]
    assert pending.reason == "Infeasible" and "capacity" in pending.message
    [status] = core.read_namespaced_pod(name, "shop").status.container_statuses
    assert status.allocated_resources["memory"] == "256Mi"


def test_a_resize_the_node_has_no_room_for_now_is_deferred_until_there_is(
    rsim: BackgroundCluster, core: client.CoreV1Api
) -> None:
    name = _pod(core, "plain").metadata.name
    # 2Gi node: app 256Mi + filler 1Gi + this pod's 256Mi; 768Mi more does not fit now.
    _resize(core, name, {"memory": "1Gi"}, {"memory": "1Gi"})
    rsim.advance(30)
    assert _conditions(core.read_namespaced_pod(name, "shop"))["PodResizePending"].reason == (
        "Deferred"
    )
    with api_client(rsim.api_url) as c:
        client.AppsV1Api(c).patch_namespaced_deployment_scale(
            "filler", "shop", {"spec": {"replicas": 0}}
        )
    rsim.advance(40)
    pod = core.read_namespaced_pod(name, "shop")
    assert "PodResizePending" not in _conditions(pod)
    assert pod.status.container_statuses[0].resources.requests["memory"] == "1Gi"


def test_restart_container_policy_restarts_on_a_memory_decrease(
    rsim: BackgroundCluster, core: client.CoreV1Api
) -> None:
    pod = _pod(core, "app")
    assert pod.spec.containers[0].resize_policy[0].restart_policy == "RestartContainer"
    before = pod.status.container_statuses[0].container_id
    _resize(core, pod.metadata.name, {"memory": "128Mi"}, {"memory": "256Mi"})
    rsim.advance(20)
    [status] = core.read_namespaced_pod(pod.metadata.name, "shop").status.container_statuses
    assert status.restart_count == 1
    assert status.container_id != before
    assert status.resources.limits["memory"] == "256Mi"
    # A CPU change on the same container does not restart it (its cpu policy is the default).
    _resize(core, pod.metadata.name, {"cpu": "300m"}, {"cpu": "1"})
    rsim.advance(20)
    [status] = core.read_namespaced_pod(pod.metadata.name, "shop").status.container_statuses
    assert status.restart_count == 1


def test_a_memory_limit_falls_in_place_only_with_restart_container(
    core: client.CoreV1Api,
) -> None:
    name = _pod(core, "plain").metadata.name
    with pytest.raises(ApiException) as e:
        _resize(core, name, {"memory": "128Mi"}, {"memory": "256Mi"})
    assert e.value.status == 422
    body = json.loads(e.value.body)
    assert body["details"]["causes"][0]["field"] == "spec.containers[0].resources.limits.memory"
    assert "RestartContainer" in body["details"]["causes"][0]["message"]
    # Lowering the request alone is allowed, and so is raising the limit.
    _resize(core, name, {"memory": "128Mi"}, {"memory": "512Mi"})
    _resize(core, name, {"memory": "128Mi"}, {"memory": "1Gi"})
