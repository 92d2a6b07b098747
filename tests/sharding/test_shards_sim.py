"""Three shards on the simulated cluster, sharing a real Prometheus; then one is killed.

Each replica renews its own Lease, scrapes the kubelets of its share, reconciles the
autoscalers of its share and sends what it collects to Prometheus by remote write; every
query reads Prometheus. At every step no node is scraped by two replicas and no autoscaler may
be acted on by two. Replica ``c`` then dies without a word: within two Lease durations its
nodes and autoscalers belong to the others, and Prometheus refused no sample (two writers of
one series would collide there).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from autoscaler.resource.crd import crd_manifest
from autoscaler.resource.model import GROUP, PLURAL, VERSION
from autoscaler.service import Service
from autoscaler.settings import Settings
from collectors.kube import api_client
from runtime.clock import VirtualClock
from simulator.cluster import SimulatedCluster
from simulator.scenario import parse_scenario
from tests.controller.conftest import horizontal, pas, settings_for
from tests.support.prometheus import running_prometheus

START = 1_767_600_000.0  # Monday 2026-01-05 08:00 UTC
LEASE_S = 15.0
STEP_S = 5.0
WORKLOADS = ("web", "api", "cart", "search")
SCENARIO = f"""
name: shards
seed: 5
tick: 5s
nodes:
  - {{name: node, count: 6, cpu: "16", memory: 64Gi}}
namespaces: [shop, foresight]
workloads:
{
    "".join(
        f'''  - name: {w}
    namespace: shop
    replicas: 2
    requests: {{cpu: 250m, memory: 128Mi}}
    startupSeconds: 10
    load: {{pattern: daily, peak: 3.0, base: 0.2, peakHour: 14, noise: 0.02}}
    memory: {{base: 64Mi, perCore: 0}}
'''
        for w in WORKLOADS
    )
}"""


def _autoscaler(name: str) -> dict[str, Any]:
    spec = horizontal()
    return pas(name, {**spec, "targetRef": {"kind": "Deployment", "name": name}})


@dataclass
class Shards:
    cluster: SimulatedCluster
    clock: VirtualClock
    services: dict[str, Service]
    senders: list[asyncio.Task[None]]
    prometheus: str


def _settings(tmp: Path, kubeconfig: Path, identity: str, prometheus: str) -> Settings:
    base = settings_for(tmp / identity, kubeconfig).model_dump()
    return Settings.model_validate(
        {
            **base,
            "rules": {**base["rules"], "builtin": False},
            "leader": {
                "identity": identity,
                "namespace": "foresight",
                "lease_seconds": LEASE_S,
                "renew_seconds": STEP_S,
            },
            "sharding": {"replicas": 3},
            "storage": {"query_url": prometheus},
            "remote_write": [{"url": f"{prometheus}/api/v1/write"}],
        }
    )


@pytest.fixture
async def shards(tmp_path: Path) -> AsyncIterator[Shards]:
    clock = VirtualClock(start=START, autoadvance=False)
    cluster = SimulatedCluster(parse_scenario(SCENARIO, "shards.yaml"), clock)
    await cluster.start(run_loop=False)
    kubeconfig = tmp_path / "kubeconfig"
    cluster.write_kubeconfig(kubeconfig)
    with running_prometheus(
        tmp_path / "prometheus",
        "global: {}\n",
        None,
        "--web.enable-remote-write-receiver",
        "--storage.tsdb.retention.time=100y",
    ) as prometheus:
        services: dict[str, Service] = {}
        senders: list[asyncio.Task[None]] = []
        api = None
        try:
            for identity in ("a", "b", "c"):
                settings = _settings(tmp_path, kubeconfig, identity, prometheus)
                if api is None:
                    api = api_client(settings.kubernetes)
                    crd: Any = crd_manifest()
                    extensions = k8s.ApiextensionsV1Api(api)
                    await asyncio.to_thread(extensions.create_custom_resource_definition, crd)
                    custom = k8s.CustomObjectsApi(api)
                    for name in WORKLOADS:
                        await asyncio.to_thread(
                            custom.create_namespaced_custom_object,
                            GROUP,
                            VERSION,
                            "shop",
                            PLURAL,
                            _autoscaler(name),
                        )
                service = Service(settings, clock, api=api_client(settings.kubernetes))
                await service.start()
                await service.wait_synced()
                senders.append(asyncio.create_task(service.remote_write.run()))
                services[identity] = service
            yield Shards(cluster, clock, services, senders, prometheus)
        finally:
            for task in senders:
                task.cancel()
            for service in services.values():
                await service.close()
            if api is not None:
                api.close()
            await cluster.stop()
            await clock.aclose()


async def _step(shards: Shards, alive: list[str]) -> None:
    await shards.cluster.advance(STEP_S)
    for identity in alive:
        service = shards.services[identity]
        assert service.shards is not None
        await service.shards.step()
        await service.elector.try_acquire_or_renew()
        await service.collect_once()
        await asyncio.to_thread(service.store.flush)
        await service.control_once()


def _owners(shards: Shards, alive: list[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    nodes: dict[str, list[str]] = {}
    autoscalers: dict[str, list[str]] = {}
    for identity in alive:
        service = shards.services[identity]
        for endpoint in service._node_endpoints():
            nodes.setdefault(endpoint.name, []).append(identity)
        for name in WORKLOADS:
            if service._may_act("shop", name):
                autoscalers.setdefault(name, []).append(identity)
    return nodes, autoscalers


def _check_exclusive(nodes: dict[str, list[str]], autoscalers: dict[str, list[str]]) -> None:
    assert all(len(who) == 1 for who in nodes.values()), nodes
    assert all(len(who) == 1 for who in autoscalers.values()), autoscalers


async def test_three_shards_split_the_work_and_take_over_a_killed_one(shards: Shards) -> None:
    alive = ["a", "b", "c"]
    every_node = {n.name for n in shards.services["a"].watcher.model.nodes()}
    assert len(every_node) == 6
    for _ in range(round(3 * LEASE_S / STEP_S)):
        await _step(shards, alive)
        _check_exclusive(*_owners(shards, alive))
    nodes, autoscalers = _owners(shards, alive)
    assert set(nodes) == every_node and set(autoscalers) == set(WORKLOADS)
    owned_by_c = [n for n, who in nodes.items() if who == ["c"]]
    acting_c = [a for a, who in autoscalers.items() if who == ["c"]]
    assert owned_by_c or acting_c, "c owns nothing: the kill would prove nothing"
    # Each replica scraped only its own kubelets.
    for identity in alive:
        scraped = set(shards.services[identity].kubelets.latest)  # type: ignore[union-attr]
        assert scraped == {n for n, who in nodes.items() if who == [identity]}, identity

    # c dies: no more steps, no goodbye.
    alive = ["a", "b"]
    killed_at = shards.clock.now()
    taken_over_at = None
    while shards.clock.now() - killed_at <= 2 * LEASE_S + STEP_S:
        await _step(shards, alive)
        nodes, autoscalers = _owners(shards, alive)
        _check_exclusive(nodes, autoscalers)
        if taken_over_at is None and (
            set(nodes) == every_node and set(autoscalers) == set(WORKLOADS)
        ):
            taken_over_at = shards.clock.now()
    assert taken_over_at is not None, "c's share did not move"
    assert taken_over_at - killed_at <= 2 * LEASE_S

    # Prometheus took every sample: no series had two writers.
    for identity in ("a", "b", "c"):
        queues = shards.services[identity].remote_write.queues
        assert sum(q.stats.samples_sent for q in queues) > 0, identity
        assert sum(q.stats.samples_failed for q in queues) == 0, identity
