"""The official kubernetes client against the simulator: core and apps resources."""

from __future__ import annotations

import json
import urllib.request
from urllib.error import HTTPError

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from simulator.background import BackgroundCluster


def test_discovery_and_version(api: client.ApiClient) -> None:
    version = client.VersionApi(api).get_code()
    assert version.major == "1"
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "batch", "coordination.k8s.io", "apiextensions.k8s.io"} <= groups
    core = client.CoreApi(api).get_api_versions()
    assert core.versions == ["v1"]


def test_nodes_have_capacity_conditions_and_kubelet_port(api: client.ApiClient) -> None:
    nodes = client.CoreV1Api(api).list_node().items
    assert [n.metadata.name for n in nodes] == ["node-1", "node-2"]
    node = nodes[0]
    assert node.status.capacity["cpu"] == "4"
    assert node.status.allocatable["memory"] == "8Gi"
    ready = [c for c in node.status.conditions if c.type == "Ready"]
    assert ready[0].status == "True"
    assert node.status.daemon_endpoints.kubelet_endpoint.port > 0
    assert node.metadata.uid and node.metadata.resource_version
    assert node.metadata.creation_timestamp is not None


def test_deployment_pods_become_ready_after_startup(
    api: client.ApiClient, sim: BackgroundCluster
) -> None:
    core = client.CoreV1Api(api)
    pods = core.list_namespaced_pod("shop", label_selector="app=web").items
    assert len(pods) == 2
    assert all(p.status.phase == "Running" for p in pods)
    assert not any(
        c.status == "True" for p in pods for c in p.status.conditions if c.type == "Ready"
    )
    sim.advance(30)
    pods = core.list_namespaced_pod("shop", label_selector="app=web").items
    assert all(c.status == "True" for p in pods for c in p.status.conditions if c.type == "Ready")
    status = pods[0].status.container_statuses[0]
    assert status.ready and status.restart_count == 0
    assert status.resources.limits == {"cpu": "1", "memory": "256Mi"}
    dep = client.AppsV1Api(api).read_namespaced_deployment("web", "shop")
    assert dep.status.ready_replicas == 2


def test_scale_subresource_returns_scale_and_scales(
    api: client.ApiClient, sim: BackgroundCluster
) -> None:
    apps = client.AppsV1Api(api)
    scale = apps.read_namespaced_deployment_scale("web", "shop")
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 4}})
    sim.advance(10)
    pods = client.CoreV1Api(api).list_namespaced_pod("shop", label_selector="app=web").items
    assert len(pods) == 4
    scale = apps.read_namespaced_deployment_scale("web", "shop")
    scale.spec.replicas = 1
    apps.replace_namespaced_deployment_scale("web", "shop", scale)
    sim.advance(10)
    assert len(client.CoreV1Api(api).list_namespaced_pod("shop").items) == 1


def test_stale_resource_version_is_a_conflict(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(
        "shop", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"a": "1"})
    )
    cm.data = {"a": "2"}
    core.replace_namespaced_config_map("settings", "shop", cm)
    cm.data = {"a": "3"}
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("settings", "shop", cm)
    assert e.value.status == 409
    assert "the object has been modified" in e.value.body


def test_not_found_already_exists_invalid(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("nope", "shop")
    assert e.value.status == 404 and '"reason":"NotFound"' in e.value.body
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dup"))
    core.create_namespaced_config_map("shop", body)
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("shop", body)
    assert e.value.status == 409 and "AlreadyExists" in e.value.body
    bad = client.V1Pod(
        metadata=client.V1ObjectMeta(name="Bad_Name"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="i")]),
    )
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod("shop", bad)
    assert e.value.status == 422 and "metadata.name" in e.value.body
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("ghost", body)
    assert e.value.status == 404 and 'namespaces \\"ghost\\" not found' in e.value.body


def test_list_with_selectors_and_pagination(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    for i in range(5):
        core.create_namespaced_config_map(
            "shop",
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"cm-{i}", labels={"tier": "a" if i % 2 else "b"})
            ),
        )
    page = core.list_namespaced_config_map("shop", limit=2)
    names = [c.metadata.name for c in page.items]
    while page.metadata._continue:
        page = core.list_namespaced_config_map("shop", limit=2, _continue=page.metadata._continue)
        names += [c.metadata.name for c in page.items]
    assert names == [f"cm-{i}" for i in range(5)]
    assert len(core.list_namespaced_config_map("shop", label_selector="tier=a").items) == 2
    assert len(core.list_namespaced_config_map("shop", label_selector="tier in (a,b)").items) == 5
    assert len(core.list_namespaced_config_map("shop", label_selector="tier!=a").items) == 3
    found = core.list_namespaced_config_map("shop", field_selector="metadata.name=cm-3").items
    assert [c.metadata.name for c in found] == ["cm-3"]
    pods = core.list_pod_for_all_namespaces(field_selector="status.phase=Running").items
    assert len(pods) == 2


def test_patches_merge_strategic_and_json(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    apps.patch_namespaced_deployment("web", "shop", {"metadata": {"labels": {"team": "a"}}})
    # Strategic merge: the container list is merged by name, not replaced.
    apps.patch_namespaced_deployment(
        "web",
        "shop",
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "app", "image": "registry.example/app:2.0"}]}
                }
            }
        },
    )
    dep = apps.read_namespaced_deployment("web", "shop")
    container = dep.spec.template.spec.containers[0]
    assert container.image == "registry.example/app:2.0"
    assert container.resources.requests == {"cpu": "250m", "memory": "128Mi"}
    assert dep.metadata.labels["team"] == "a"
    assert dep.metadata.generation == 2
    apps.patch_namespaced_deployment(
        "web", "shop", [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    )
    assert apps.read_namespaced_deployment("web", "shop").spec.replicas == 3


def test_unsupported_paths_and_verbs_are_statuses(
    api: client.ApiClient, sim: BackgroundCluster
) -> None:

    for method, path, code in [
        ("GET", "/apis/nothing.example/v1/things", 404),
        ("GET", "/api/v1/namespaces/shop/pods/x/exec", 404),
        ("POST", "/api/v1/pods", 405),
        ("OPTIONS", "/api/v1/namespaces", 405),
    ]:
        request = urllib.request.Request(
            sim.api_url + path, method=method, data=(b"{}" if method == "POST" else None)
        )
        with pytest.raises(HTTPError) as e:
            urllib.request.urlopen(request, timeout=5)

        status = json.loads(e.value.read())
        e.value.close()
        assert e.value.code == code and status["kind"] == "Status" and status["code"] == code
        assert status["message"]


def test_delete_deployment_collects_its_pods(api: client.ApiClient, sim: BackgroundCluster) -> None:
    client.AppsV1Api(api).delete_namespaced_deployment("web", "shop")
    sim.advance(10)
    core = client.CoreV1Api(api)
    assert core.list_namespaced_pod("shop").items == []
    assert client.AppsV1Api(api).list_namespaced_replica_set("shop").items == []
