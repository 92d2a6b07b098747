"""The cluster watcher against the simulated cluster, through the official client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from collectors.cluster import ClusterWatcher
from collectors.cluster_model import ClusterModel, parse_pod
from collectors.kube import KubeApiError, api_client, call
from collectors.settings import KubernetesSettings
from runtime.backoff import Backoff
from runtime.clock import VirtualClock
from simulator.background import BackgroundCluster
from simulator.faults import FaultSpec
from simulator.scenario import parse_scenario

SCENARIO = """
name: watched
seed: 1
tick: 10s
nodes:
  - {name: node, count: 2, cpu: "4", memory: 8Gi, labels: {topology.kubernetes.io/zone: z1}}
namespaces: [shop]
workloads:
  - name: web
    namespace: shop
    replicas: 2
    requests: {cpu: 250m, memory: 128Mi}
    limits: {cpu: "1", memory: 256Mi}
    startupSeconds: 20
    load: {pattern: constant, peak: 1.0, noise: 0}
    memory: {base: 64Mi, perCore: 64Mi}
"""


@pytest.fixture
def sim() -> Iterator[BackgroundCluster]:
    clock = VirtualClock(start=1_740_000_000.0, speed=None, autoadvance=False)
    with BackgroundCluster(parse_scenario(SCENARIO, "watched.yaml"), clock) as bg:
        bg.advance(60)
        yield bg


@pytest.fixture
def api(sim: BackgroundCluster, tmp_path: Path) -> Iterator[client.ApiClient]:
    """A client built as production builds it: from a kubeconfig, with retries left to us."""
    assert sim.cluster is not None
    kubeconfig = tmp_path / "sim.kubeconfig"
    sim.cluster.write_kubeconfig(kubeconfig)
    with api_client(KubernetesSettings(kubeconfig=kubeconfig)) as api:
        yield api


@pytest.fixture
async def watcher(api: client.ApiClient) -> AsyncIterator[ClusterWatcher]:
    clock = VirtualClock(start=1_740_000_000.0)
    settings = KubernetesSettings(
        watch_timeout_seconds=5, list_page_size=2, retry_initial_seconds=0.5, resync_seconds=3600
    )
    w = ClusterWatcher(api, clock, settings)
    w.start()
    await asyncio.wait_for(w.wait_synced(), 30)
    yield w
    await w.stop()
    await clock.aclose()


async def _until(condition: Callable[[], bool], within: float = 20) -> None:
    """Wait for the watch to deliver: the other side is a real server on loopback."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_lists_every_kind_and_resolves_owners(watcher: ClusterWatcher) -> None:
    model = watcher.model
    assert watcher.synced
    nodes = model.nodes()
    assert len(nodes) == 2 and all(n.ready for n in nodes)
    assert nodes[0].allocatable["cpu"] <= 4 and nodes[0].capacity["memory"] == 8 * 2**30
    assert nodes[0].zone == "z1" and nodes[0].kubelet_port
    web = [p for p in model.pods() if p.namespace == "shop"]
    assert len(web) == 2
    assert model.workload_of(web[0]) == ("Deployment", "web")
    assert web[0].containers[0].requests == {"cpu": 0.25, "memory": 128 * 2**20}
    [deployment] = [w for w in model.workloads("Deployment") if w.name == "web"]
    assert deployment.desired == 2 and deployment.ready == 2
    assert watcher.health.lists["Pod"] == 1


async def test_watch_follows_changes(
    sim: BackgroundCluster, api: client.ApiClient, watcher: ClusterWatcher
) -> None:
    apps = client.AppsV1Api(api)
    await asyncio.to_thread(
        apps.patch_namespaced_deployment_scale, "web", "shop", {"spec": {"replicas": 4}}
    )
    await asyncio.to_thread(sim.advance, 60)
    await _until(lambda: len([p for p in watcher.model.pods() if p.namespace == "shop"]) == 4)
    await _until(
        lambda: next(w for w in watcher.model.workloads("Deployment") if w.name == "web").ready == 4
    )
    await asyncio.to_thread(
        apps.patch_namespaced_deployment_scale, "web", "shop", {"spec": {"replicas": 1}}
    )
    await asyncio.to_thread(sim.advance, 30)
    await _until(lambda: len([p for p in watcher.model.pods() if p.namespace == "shop"]) == 1)
    assert watcher.health.events["Pod"] >= 3


async def test_relists_after_410_gone(
    sim: BackgroundCluster, api: client.ApiClient, watcher: ClusterWatcher
) -> None:
    assert sim.cluster is not None
    cluster = sim.cluster
    elapsed = sim.clock.now() - cluster.start_time
    # Cut the watches and keep them from coming back for 20 s, while the cluster changes and
    # its history is compacted: the resume then finds its version gone.
    outage = FaultSpec(type="api-error", code=503, verbs=("watch",), at=elapsed, duration=20)
    await asyncio.to_thread(sim.call, lambda: cluster.inject(outage))
    cut = FaultSpec(type="watch-disconnect", at=elapsed)
    await asyncio.to_thread(sim.call, lambda: cluster.inject(cut))
    await asyncio.to_thread(sim.advance, 5)
    await _until(lambda: any(k[1] == "server_error" for k in watcher.health.errors))
    apps = client.AppsV1Api(api)
    await asyncio.to_thread(
        apps.patch_namespaced_deployment_scale, "web", "shop", {"spec": {"replicas": 3}}
    )
    # Compact while watches still fail, then let the outage end: every resume finds 410.
    await asyncio.to_thread(sim.advance, 10)
    await asyncio.to_thread(sim.call, cluster.store.compact)
    await asyncio.to_thread(sim.advance, 30)
    await _until(lambda: sum(watcher.health.relists_gone.values()) >= 1)
    await _until(lambda: len([p for p in watcher.model.pods() if p.namespace == "shop"]) == 3)


async def test_api_errors_are_retried_with_backoff(
    sim: BackgroundCluster, api: client.ApiClient
) -> None:
    assert sim.cluster is not None
    cluster = sim.cluster
    fault = FaultSpec(
        type="api-error", code=503, verbs=("list",), resources=("nodes",), retryAfter=2
    )
    await asyncio.to_thread(sim.call, lambda: cluster.inject(fault))
    clock = VirtualClock(start=1_740_000_000.0)
    core = client.CoreV1Api(api)
    with pytest.raises(KubeApiError) as err:
        await call(
            core.list_node, clock=clock, retry=Backoff(0.5, 30, attempts=3), what="list nodes"
        )
    assert err.value.status == 503 and err.value.retry_after == 2
    # Three retries, each waiting at least the 2 s the server asked for.
    assert clock.now() - 1_740_000_000.0 >= 6
    with pytest.raises(KubeApiError) as not_found:
        await call(
            core.read_namespace,
            "nope",
            clock=clock,
            retry=Backoff(0.5, 30, attempts=3),
            what="get ns",
        )
    assert not_found.value.status == 404 and "not found" in str(not_found.value)
    await clock.aclose()


async def test_unreachable_server_is_an_api_error_with_status_0() -> None:
    config = client.Configuration()
    config.host = "http://127.0.0.1:9"
    config.retries = False
    clock = VirtualClock()
    with client.ApiClient(config) as api, pytest.raises(KubeApiError) as err:
        await call(
            client.CoreV1Api(api).list_node,
            clock=clock,
            retry=Backoff(0.1, 1, attempts=1),
            what="list nodes",
        )
    assert err.value.status == 0 and "cannot reach" in str(err.value)
    await clock.aclose()


def test_malformed_objects_are_counted_and_skipped() -> None:
    model = ClusterModel()
    model.replace("Pod", [{"metadata": {}}, {"metadata": {"name": "ok", "namespace": "a"}}])
    assert [p.name for p in model.pods()] == ["ok"]
    assert model.parse_errors == 1


def test_pod_parsing_keeps_restarts_and_oom_kills() -> None:
    pod = parse_pod(
        {
            "metadata": {
                "name": "p",
                "namespace": "a",
                "ownerReferences": [{"kind": "StatefulSet", "name": "db", "controller": True}],
            },
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "c", "resources": {"limits": {"memory": "1Gi"}}}],
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {
                        "name": "c",
                        "ready": True,
                        "restartCount": 3,
                        "lastState": {"terminated": {"reason": "OOMKilled"}},
                    }
                ],
            },
        }
    )
    assert pod.ready and pod.restarts == 3
    assert pod.containers[0].last_termination_reason == "OOMKilled"
    assert pod.containers[0].limits == {"memory": 2**30}
    assert ClusterModel().workload_of(pod) == ("StatefulSet", "db")


async def test_one_kinds_410_never_restarts_the_other_watches(
    sim: BackgroundCluster, api: client.ApiClient
) -> None:
    assert sim.cluster is not None
    cluster = sim.cluster
    # Twenty times real time: time that jumped to each retry would make the failing Pod
    # watch retry as fast as the server answers (thousands of times a second), starving the
    # other watches it must leave alone; the longest backoff (30 s) is 1.5 s here.
    clock = VirtualClock(start=1_740_000_000.0, speed=20)
    # Watches that the server does not end on its own while the test runs.
    settings = KubernetesSettings(watch_timeout_seconds=600, retry_initial_seconds=0.5)
    watcher = ClusterWatcher(api, clock, settings)
    watcher.start()
    try:
        await asyncio.wait_for(watcher.wait_synced(), 30)
        elapsed = sim.clock.now() - cluster.start_time
        # The Pod watch alone fails for 20 s; every watch is cut once and the others resume.
        outage = FaultSpec(
            type="api-error",
            code=503,
            verbs=("watch",),
            resources=("pods",),
            at=elapsed,
            duration=20,
        )
        await asyncio.to_thread(sim.call, lambda: cluster.inject(outage))
        cut = FaultSpec(type="watch-disconnect", at=elapsed)
        await asyncio.to_thread(sim.call, lambda: cluster.inject(cut))
        await asyncio.to_thread(sim.advance, 5)
        await _until(lambda: any(k == ("Pod", "server_error") for k in watcher.health.errors))
        others = {k: n for k, n in watcher.health.watches.items() if k != "Pod"}
        await _until(lambda: all(n >= 2 for n in others.values()))
        apps = client.AppsV1Api(api)
        await asyncio.to_thread(
            apps.patch_namespaced_deployment_scale, "web", "shop", {"spec": {"replicas": 3}}
        )
        await asyncio.to_thread(sim.advance, 5)
        others = {k: n for k, n in watcher.health.watches.items() if k != "Pod"}
        # History compacted: the Pod watch resumes into a 410 ERROR event and relists.
        await asyncio.to_thread(sim.call, cluster.store.compact)
        await asyncio.to_thread(sim.advance, 30)
        await _until(lambda: watcher.health.relists_gone.get("Pod", 0) >= 1)
        await _until(lambda: watcher.health.watches["Pod"] >= 3)
        await asyncio.sleep(0.5)
        assert {k: n for k, n in watcher.health.watches.items() if k != "Pod"} == others
    finally:
        await watcher.stop()
        await clock.aclose()
