"""Watches through the kubernetes client: resume, bookmarks, 410 Gone, disconnects."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from simulator.background import BackgroundCluster


def _cm(name: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"k": "v"})


def test_watch_from_resource_version_sees_later_changes(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    listed = core.list_namespaced_config_map("shop")
    core.create_namespaced_config_map("shop", _cm("a"))
    core.patch_namespaced_config_map("a", "shop", {"data": {"k": "w"}})
    core.delete_namespaced_config_map("a", "shop")
    w = watch.Watch()
    events = []
    for event in w.stream(
        core.list_namespaced_config_map,
        "shop",
        resource_version=listed.metadata.resource_version,
        _request_timeout=5,
    ):
        events.append(event)
        if len(events) == 3:
            w.stop()
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]
    assert events[1]["object"].data == {"k": "w"}


def _stream_lines(sim: BackgroundCluster, path: str) -> list[dict[str, object]]:

    with urllib.request.urlopen(sim.api_url + path, timeout=5) as response:
        return [json.loads(line) for line in response.read().splitlines() if line]


def test_watch_without_version_starts_with_current_objects_and_times_out(
    sim: BackgroundCluster,
) -> None:
    # The watch ends when its timeout passes on the simulation clock.
    result: list[list[dict[str, object]]] = []
    reader = threading.Thread(
        target=lambda: result.append(
            _stream_lines(sim, "/api/v1/namespaces/shop/pods?watch=true&timeoutSeconds=30")
        )
    )
    reader.start()
    reader.join(0.3)
    sim.advance(30)
    reader.join(5)
    assert not reader.is_alive()
    events = result[0]
    added = [e for e in events if e["type"] == "ADDED"]
    assert len(added) == 2


def test_watch_bookmarks_carry_resource_version(sim: BackgroundCluster) -> None:
    result: list[list[dict[str, object]]] = []
    path = "/api/v1/namespaces/shop/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=90"
    reader = threading.Thread(target=lambda: result.append(_stream_lines(sim, path)))
    reader.start()
    reader.join(0.3)
    sim.advance(90)
    reader.join(5)
    bookmarks = [e for e in result[0] if e["type"] == "BOOKMARK"]
    assert bookmarks
    obj = bookmarks[0]["object"]
    assert isinstance(obj, dict) and obj["kind"] == "ConfigMap"
    assert int(obj["metadata"]["resourceVersion"]) > 0


def test_too_old_resource_version_is_410_gone(
    api: client.ApiClient, sim: BackgroundCluster
) -> None:
    core = client.CoreV1Api(api)
    old = core.list_namespaced_config_map("shop").metadata.resource_version
    core.create_namespaced_config_map("shop", _cm("b"))
    assert sim.cluster is not None
    sim.call(sim.cluster.store.compact)
    with pytest.raises(ApiException) as e:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map,
                "shop",
                resource_version=old,
                timeout_seconds=1,
                _request_timeout=5,
            )
        )
    assert e.value.status == 410


def test_watch_disconnect_fault_ends_streams(api: client.ApiClient, sim: BackgroundCluster) -> None:
    result: list[list[dict[str, object]]] = []
    reader = threading.Thread(
        target=lambda: result.append(
            _stream_lines(sim, "/api/v1/namespaces/shop/configmaps?watch=1")
        )
    )
    reader.start()
    reader.join(0.3)

    request = urllib.request.Request(
        sim.api_url + "/simulator/v1/faults",
        method="POST",
        data=json.dumps({"type": "watch-disconnect"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
    sim.advance(10)
    reader.join(5)
    assert not reader.is_alive()
