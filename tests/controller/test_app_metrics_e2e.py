"""Scaling on an application's own metric, end to end: the simulated pods serve a request
counter on loopback, the service scrapes them as annotated, and the example autoscaler
(``examples/api-requests-per-second.yaml``, applied as is) scales the ``api`` Deployment on
``sum(rate(http_requests_total{namespace="shop",job="api"}[2m]))``."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client as k8s

from simulator.cluster import SimulatedCluster
from simulator.scenario import parse_scenario
from tests.controller.conftest import START, Rig, open_rig
from tsdb.selector import parse_selector

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "api-requests-per-second.yaml"
MINUTE = 60.0

# 150 requests/s at rest (1.5 cores x 100), four times that in a flash crowd from 00:30 that
# peaks at 00:42 and fades until 02:30. One replica serves 120 requests/s (the example).
SCENARIO = """
name: app-metrics
seed: 5
tick: 10s
nodes:
  - {name: node, count: 3, cpu: "16", memory: 64Gi}
namespaces: [shop]
workloads:
  - name: api
    namespace: shop
    replicas: 3
    container: api
    requests: {cpu: 250m, memory: 128Mi}
    startupSeconds: 20
    load:
      pattern: constant
      peak: 1.5
      noise: 0.02
      flashCrowds: [{at: 30m, duration: 2h, factor: 4}]
    metrics: {port: 8080, path: /metrics, requestsPerCore: 100, errorRatio: 0.01}
  - name: quiet
    namespace: shop
    replicas: 1
    load: {pattern: constant, peak: 0.1, noise: 0}
"""

LEAKY = """
name: leaky
seed: 1
tick: 10s
nodes: [{name: node, cpu: "4", memory: 8Gi}]
workloads:
  - name: api
    namespace: shop
    replicas: 1
    container: api
    requests: {cpu: 100m, memory: 128Mi}
    limits: {memory: 200Mi}
    startupSeconds: 0
    load: {pattern: constant, peak: 1, noise: 0}
    memory: {base: 100Mi, perCore: 0, leakPerHour: 300Mi}
    metrics: {port: 8080, requestsPerCore: 10, methods: {GET: 1}}
"""


def example() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return obj


async def requests_rate(rig: Rig) -> float:
    reading = await asyncio.to_thread(
        rig.service.engine.instant,
        example()["spec"]["horizontal"]["metric"]["query"],
        round(rig.clock.now() * 1000),
    )
    return sum(float(s.values[-1]) for s in reading.series if len(s.values))


async def test_the_example_scales_the_api_on_its_request_rate(tmp_path: Path) -> None:
    async with open_rig(tmp_path, SCENARIO, history=()) as rig:
        await rig.create(example())
        replicas: list[int] = []
        rates: list[float] = []
        reasons: set[str] = set()
        # 3 hours in 30 s steps: scraped every step, so a 2-minute rate has four samples.
        for i in range(int(3 * 60 * MINUTE / 30)):
            await rig.step(30)
            if i % 20 == 0:
                reasons |= {e.reason for e in await rig.events()}
                rates.append(await requests_rate(rig))
            replicas.append(await rig.replicas("api"))
            if i == 10:  # 5 minutes in: the resting rate is measured, the count holds
                assert 140 <= await requests_rate(rig) <= 160
                assert replicas[-1] == 3
                status = await rig.status("api")
                assert status["currentReplicas"] == 3
        peak = max(replicas)
        # 600 requests/s at the crowd's peak: at least 5 replicas of 120.
        assert peak >= 5, (replicas, rates)
        assert max(rates) > 500
        # Up during the crowd, back to the minimum once it has faded.
        assert replicas.index(peak) < len(replicas) * 0.5
        assert replicas[-1] == 3
        status = await rig.status("api")
        assert status["lastDecision"]["direction"] == "down"
        assert status["lastDecision"]["reason"]
        reasons |= {e.reason for e in await rig.events()}
        assert {"ScaledUp", "ScaledDown"} <= reasons
        scales = [a for a in rig.service.controller.actions_log if a["kind"] == "scale"]
        assert all(a["reason"] and a["message"] for a in scales)
        assert {a["to"] > a["from"] for a in scales} == {True, False}
        assert rig.service.pod_health.up and all(rig.service.pod_health.up.values())
        await assert_series_labels(rig)


async def assert_series_labels(rig: Rig) -> None:
    selector = parse_selector('http_requests_total{namespace="shop",job="api"}')
    series = rig.service.store.select(selector, 0, round(rig.clock.now() * 1000))
    pods = await asyncio.to_thread(k8s.CoreV1Api(rig.api).list_namespaced_pod, "shop")
    nodes = {p.metadata.name: p.spec.node_name for p in pods.items}
    live = {dict(s.labels)["pod"] for s in series} & set(nodes)
    assert live, "no live api pod was scraped"
    for s in series:
        labels = dict(s.labels)
        assert labels["container"] == "api"
        assert labels["method"] in ("GET", "POST") and labels["code"] in ("200", "500")
        if labels["pod"] in nodes:
            assert labels["node"] == nodes[labels["pod"]]
    # The pod that serves nothing is not scraped; no target outside loopback was reached.
    assert not any(dict(s.labels)["pod"].startswith("quiet") for s in series)
    for key in rig.service.pod_health.up:
        assert key.startswith("shop/api-")
    for pod in pods.items:
        assert ipaddress.ip_address(pod.status.pod_ip).is_loopback


async def test_scraping_pods_can_be_turned_off(tmp_path: Path) -> None:
    async with open_rig(tmp_path, SCENARIO, history=()) as rig:
        collectors = rig.service.settings.collectors.model_copy(update={"scrape_pods": False})
        settings = rig.service.settings.model_copy(update={"collectors": collectors})
        await rig.service.close()
        rig.service = type(rig.service)(settings, rig.clock, api=rig.api, persistent=False)
        await rig.service.start()
        await rig.service.wait_synced()
        for _ in range(6):
            await rig.step(30)
        assert await requests_rate(rig) == 0.0
        assert not rig.service.pod_health.up


async def test_counters_start_again_when_the_container_restarts() -> None:
    from runtime.clock import VirtualClock  # noqa: PLC0415

    clock = VirtualClock(start=START, autoadvance=False)
    cluster = SimulatedCluster(parse_scenario(LEAKY, "leaky.yaml"), clock)
    await cluster.start(run_loop=False)
    try:
        [node] = cluster.kubelets.nodes.values()
        [pod] = node.pods.values()
        stored = cluster.store.get(cluster.kinds.pod.storage_key, "shop", pod.name)
        assert stored is not None
        ip = stored.obj["status"]["podIP"]
        assert ipaddress.ip_address(ip).is_loopback
        seen: list[float] = []
        async with httpx.AsyncClient() as client:
            for _ in range(60):  # 30 minutes: the leak reaches the limit after 20
                await cluster.advance(30)
                body = (await client.get(f"http://{ip}:8080/metrics")).text
                [line] = [x for x in body.splitlines() if x.startswith("http_requests_total")]
                seen.append(float(line.rsplit(" ", 1)[1]))
        assert pod.containers[0].restarts >= 1
        drops = [i for i in range(1, len(seen)) if seen[i] < seen[i - 1]]
        assert drops, seen
        # Between restarts, 10 requests/s for 30 s a step.
        assert seen[1] - seen[0] == 300.0
    finally:
        await cluster.stop()
        await clock.aclose()
