"""Leases, pod resize, CRDs and custom objects through the kubernetes client."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from simulator.background import BackgroundCluster

HERE = Path(__file__).resolve().parent


def _lease(holder: str) -> client.V1Lease:
    return client.V1Lease(
        metadata=client.V1ObjectMeta(name="foresight-leader"),
        spec=client.V1LeaseSpec(holder_identity=holder, lease_duration_seconds=15),
    )


def test_lease_acquire_renew_and_lose_race(api: client.ApiClient) -> None:
    coord = client.CoordinationV1Api(api)
    lease = coord.create_namespaced_lease("default", _lease("replica-a"))
    stale = coord.read_namespaced_lease("foresight-leader", "default")
    lease.spec.lease_transitions = 0
    lease.spec.renew_time = lease.metadata.creation_timestamp
    renewed = coord.replace_namespaced_lease("foresight-leader", "default", lease)
    assert renewed.spec.holder_identity == "replica-a"
    # The other replica tries to take over with what it read before the renewal.
    stale.spec.holder_identity = "replica-b"
    with pytest.raises(ApiException) as e:
        coord.replace_namespaced_lease("foresight-leader", "default", stale)
    assert e.value.status == 409
    with pytest.raises(ApiException) as e:
        coord.create_namespaced_lease("default", _lease("replica-b"))
    assert e.value.status == 409


def _ready(api: client.ApiClient, sim: BackgroundCluster) -> client.V1Pod:
    sim.advance(30)
    return client.CoreV1Api(api).list_namespaced_pod("shop").items[0]


def test_in_place_resize_updates_spec_and_status(
    api: client.ApiClient, sim: BackgroundCluster
) -> None:
    core = client.CoreV1Api(api)
    pod = _ready(api, sim)
    name = pod.metadata.name
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "192Mi"},
                        "limits": {"cpu": "2", "memory": "256Mi"},
                    },
                }
            ]
        }
    }
    resized = core.patch_namespaced_pod_resize(name, "shop", patch)
    assert resized.spec.containers[0].resources.requests["cpu"] == "500m"
    # One kubelet sync admits the resize (PodResizeInProgress), the next finds it applied.
    sim.advance(20)
    status = core.read_namespaced_pod(name, "shop").status.container_statuses[0]
    assert status.resources.requests == {"cpu": "500m", "memory": "192Mi"}
    assert status.allocated_resources == {"cpu": "500m", "memory": "192Mi"}
    assert status.restart_count == 0


def test_resize_beyond_the_node_is_infeasible(
    api: client.ApiClient, sim: BackgroundCluster
) -> None:
    core = client.CoreV1Api(api)
    name = _ready(api, sim).metadata.name
    core.patch_namespaced_pod_resize(
        name,
        "shop",
        {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "resources": {"requests": {"cpu": "16"}, "limits": {"cpu": "16"}},
                    }
                ]
            }
        },
    )
    sim.advance(10)
    conditions = {c.type: c for c in core.read_namespaced_pod(name, "shop").status.conditions}
    assert conditions["PodResizePending"].reason == "Infeasible"


def test_resources_change_only_through_resize(
    api: client.ApiClient, sim: BackgroundCluster
) -> None:
    core = client.CoreV1Api(api)
    name = _ready(api, sim).metadata.name
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_pod(
            name,
            "shop",
            {"spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "300m"}}}]}},
        )
    assert e.value.status == 422
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_pod_resize(
            name, "shop", {"spec": {"containers": [{"name": "app", "image": "other:1"}]}}
        )
    assert e.value.status == 422


def _install_crd(api: client.ApiClient) -> None:
    crd = yaml.safe_load((HERE / "data" / "pas-crd.yaml").read_text())
    client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)


def _pas(name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "PredictiveAutoscaler",
        "metadata": {"name": name},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, **spec},
    }


def test_custom_objects_with_status_subresource(api: client.ApiClient) -> None:
    _install_crd(api)
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(
        "predictiveautoscalers.foresight.dev"
    )
    assert {c.type: c.status for c in crd.status.conditions}["Established"] == "True"
    custom = client.CustomObjectsApi(api)
    args = ("foresight.dev", "v1alpha1", "shop", "predictiveautoscalers")
    created = custom.create_namespaced_custom_object(*args, _pas("web", unknown=1))
    assert created["spec"]["mode"] == "Recommend"  # schema default
    assert "unknown" not in created["spec"]  # pruned
    assert created["metadata"]["generation"] == 1
    custom.patch_namespaced_custom_object_status(
        *args, "web", {"status": {"currentReplicas": 2, "desiredReplicas": 4}}
    )
    # A status write through the main resource is ignored; spec changes bump generation.
    obj = custom.patch_namespaced_custom_object(
        *args, "web", {"spec": {"mode": "Auto"}, "status": {"desiredReplicas": 9}}
    )
    assert obj["status"]["desiredReplicas"] == 4
    assert obj["metadata"]["generation"] == 2
    listed = custom.list_namespaced_custom_object(*args)
    assert [o["metadata"]["name"] for o in listed["items"]] == ["web"]


def test_custom_object_schema_violations_are_invalid(api: client.ApiClient) -> None:
    _install_crd(api)
    custom = client.CustomObjectsApi(api)
    args = ("foresight.dev", "v1alpha1", "shop", "predictiveautoscalers")
    with pytest.raises(ApiException) as e:
        custom.create_namespaced_custom_object(*args, _pas("bad", mode="Sometimes"))
    assert e.value.status == 422 and "spec.mode" in e.value.body
    bad = _pas("bad2")
    del bad["spec"]
    bad["spec"] = {"horizontal": {"minReplicas": 0}}
    with pytest.raises(ApiException) as e:
        custom.create_namespaced_custom_object(*args, bad)
    assert "spec.targetRef" in e.value.body and "spec.horizontal.minReplicas" in e.value.body
    with pytest.raises(ApiException) as e:
        custom.get_namespaced_custom_object(*args, "missing")
    assert e.value.status == 404


def test_deleting_a_crd_removes_its_api(api: client.ApiClient) -> None:
    _install_crd(api)
    ext = client.ApiextensionsV1Api(api)
    ext.delete_custom_resource_definition("predictiveautoscalers.foresight.dev")
    with pytest.raises(ApiException) as e:
        client.CustomObjectsApi(api).list_namespaced_custom_object(
            "foresight.dev", "v1alpha1", "shop", "predictiveautoscalers"
        )
    assert e.value.status == 404
