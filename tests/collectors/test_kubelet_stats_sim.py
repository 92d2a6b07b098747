"""cAdvisor and the summary API collected from the simulated cluster within the collection
cycle, through the real clients: labels as kube-prometheus gives them, each on its own
interval, malformed responses as scrape failures with stale series."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from collectors.cluster import ClusterWatcher
from collectors.cycle import CollectionCycle, node_endpoints
from collectors.kube import api_client
from collectors.kubelet import KubeletCollector, NodeEndpoint
from collectors.kubelet_stats import (
    CadvisorCollector,
    KubeletStatsCollector,
    kubelet_stats_collectors,
)
from collectors.scrape import ScrapeHealth, Scraper
from collectors.settings import CollectorSettings, KubernetesSettings
from runtime import names, names_kubelet
from runtime.clock import VirtualClock
from runtime.families import Family, built
from runtime.forked import run_forked
from simulator.background import BackgroundCluster
from simulator.faults import FaultSpec
from simulator.scenario import parse_scenario
from tests.support.collection import collection_scraper
from tests.support.external import require_data
from tsdb import Store, StoreSettings, eq, name_is, stale_mask

SCENARIO = """
name: stats
seed: 3
tick: 5s
nodes:
  - {name: node, count: 2, cpu: "8", memory: 16Gi}
namespaces: [shop]
workloads:
  - name: web
    namespace: shop
    replicas: 2
    requests: {cpu: 500m, memory: 256Mi}
    limits: {cpu: "1", memory: 1Gi}
    startupSeconds: 5
    load: {pattern: constant, peak: 3, noise: 0}
    memory: {base: 100Mi, perCore: 0}
  - name: db
    namespace: shop
    kind: StatefulSet
    replicas: 1
    requests: {cpu: "1", memory: 1Gi}
    startupSeconds: 5
    load: {pattern: constant, peak: 0.5, noise: 0}
    memory: {base: 600Mi, perCore: 0}
"""
START = 1_750_000_000.0
GIB = 2**30


@pytest.fixture
def sim() -> Iterator[BackgroundCluster]:
    clock = VirtualClock(start=START, speed=None, autoadvance=False)
    with BackgroundCluster(parse_scenario(SCENARIO, "stats.yaml"), clock) as bg:
        bg.advance(60)
        yield bg


@dataclass
class Rig:
    sim: BackgroundCluster
    cycle: CollectionCycle
    store: Store
    stats: list[KubeletStatsCollector]


@pytest.fixture
async def rig(sim: BackgroundCluster, tmp_path: Path) -> AsyncIterator[Rig]:
    assert sim.cluster is not None
    kubeconfig = tmp_path / "sim.kubeconfig"
    sim.cluster.write_kubeconfig(kubeconfig)
    clock = sim.clock
    store = Store(StoreSettings(), clock, persistent=False)
    settings = CollectorSettings(
        kubelet_scheme="http",
        stagger_seconds=0,
        token_file=None,
        cadvisor_interval_seconds=30,
        summary_interval_seconds=60,
    )
    with api_client(KubernetesSettings(kubeconfig=kubeconfig)) as api:
        watcher = ClusterWatcher(api, VirtualClock(start=START), KubernetesSettings())
        watcher.start()
        try:
            await asyncio.wait_for(watcher.wait_synced(), 30)
            async with httpx.AsyncClient() as http:

                def scraper(job: str) -> Scraper:
                    return collection_scraper(http, clock, settings, ScrapeHealth(job))

                def nodes() -> list[object]:
                    return node_endpoints(watcher.model)  # type: ignore[return-value]

                kubelets = KubeletCollector(
                    scraper("kubelet"),
                    store,
                    clock,
                    settings,
                    nodes,  # type: ignore[arg-type]
                )
                stats = kubelet_stats_collectors(scraper, store, clock, settings, nodes)  # type: ignore[arg-type]
                cycle = CollectionCycle(
                    store,
                    clock,
                    watcher.model,
                    kubelets,
                    scrape_health=[kubelets._scraper.health],
                    stats=stats,
                )
                yield Rig(sim, cycle, store, stats)
        finally:
            await watcher.stop()
            store.close()


async def _cycles(rig: Rig, n: int) -> None:
    for _ in range(n):
        await rig.cycle.run_once()
        await asyncio.to_thread(rig.sim.advance, 15)


def _labels(rig: Rig, name: str, *matchers: object) -> list[dict[str, str]]:
    return [dict(s.labels) for s in rig.store.select([name_is(name), *matchers], 0, 2**62)]  # type: ignore[list-item]


async def test_cadvisor_and_summary_series_reach_the_store_with_kubelet_labels(rig: Rig) -> None:
    await _cycles(rig, 4)
    throttled = rig.store.select(
        [name_is(names_kubelet.CFS_THROTTLED_SECONDS), eq("namespace", "shop")], 0, 2**62
    )
    assert {dict(s.labels)["pod"].startswith("web-") for s in throttled} == {True}
    assert len(throttled) == 2
    for series in throttled:
        labels = dict(series.labels)
        assert labels["job"] == "kubelet" and labels["metrics_path"] == "/metrics/cadvisor"
        assert labels["container"] == "app" and labels["image"] and labels["node"]
        assert labels["instance"].startswith("127.0.0.1:")
        # Demand 1.5 cores a pod over a limit of 1: throttled, and more so with time.
        assert len(series.values) == 2  # every second cycle: 30 s over 15 s cycles
        assert series.values[-1] > series.values[0] > 0
    network = _labels(rig, names_kubelet.NET_TX_BYTES, eq("namespace", "shop"))
    assert sorted(s["interface"] for s in network) == ["eth0"] * 3
    assert all("container" not in s for s in network)
    # Summary: the StatefulSet pod's claim under the kubelet's names, node filesystems.
    [volume] = rig.store.select([name_is(names_kubelet.VOLUME_USED)], 0, 2**62)
    labels = dict(volume.labels)
    assert (labels["namespace"], labels["persistentvolumeclaim"]) == ("shop", "data-db-0")
    assert labels["metrics_path"] == "/stats/summary" and labels["job"] == "kubelet"
    assert len(volume.values) == 1  # every fourth cycle
    assert GIB < volume.values[0] < 2 * GIB
    capacity = rig.store.select(
        [name_is(names.NODE_FS_CAPACITY), eq("filesystem", "nodefs")], 0, 2**62
    )
    assert len(capacity) == 2 and all(s.values[0] == 100 * GIB for s in capacity)
    assert _labels(rig, names.NODE_FS_USED, eq("filesystem", "imagefs"))
    pods = _labels(rig, names.POD_EPHEMERAL_STORAGE_USED, eq("namespace", "shop"))
    assert sorted(p["pod"].split("-")[0] for p in pods) == ["db", "web", "web"]
    # On /metrics too, with the same labels.
    families = {f.name: f for f in built(rig.cycle.families())}
    exported = families[names_kubelet.VOLUME_USED].samples
    assert [labels["persistentvolumeclaim"] for labels, _ in exported] == ["data-db-0"]
    # The replica's health is counted on the loop and built elsewhere, from a copy taken
    # when it was asked for: counting that goes on meanwhile does not leak into it.
    asked = rig.cycle.health()
    await _cycles(rig, 1)

    def attempts(health: list[Family]) -> dict[str, float]:
        [family] = [f for f in health if f.name == names.SCRAPE_ATTEMPTS]
        return {labels["job"]: value for labels, value in family.samples}

    assert attempts(list(asked.build())) == {"kubelet": 8, "cadvisor": 4, "summary": 2}
    assert attempts(list(rig.cycle.health().build()))["kubelet"] == 10


async def test_their_series_render_in_a_forked_child_while_a_thread_holds_the_store(
    rig: Rig,
) -> None:
    """A child forked to render ``/metrics`` has only the forking thread: a lock another
    thread held at the fork is never released there, so building the families must take
    none of the store's."""
    await _cycles(rig, 2)
    families = rig.cycle.families()
    held, release = threading.Event(), threading.Event()

    def hold_the_store() -> None:
        with rig.store._lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_store)
    holder.start()
    try:
        held.wait(30)
        names_built = await run_forked(
            lambda: " ".join(f.name for f in built(families)).encode(), deadline_s=20
        )
    finally:
        release.set()
        holder.join()
    assert {names_kubelet.CFS_THROTTLED_SECONDS, names_kubelet.VOLUME_USED} <= set(
        bytes(names_built).decode().split()
    )


async def test_a_garbled_response_fails_the_scrape_and_ends_the_nodes_series(rig: Rig) -> None:
    await _cycles(rig, 2)
    assert rig.sim.cluster is not None
    cluster = rig.sim.cluster
    [web] = rig.store.select(
        [name_is(names_kubelet.MEMORY_RSS), eq("pod", _a_web_pod(rig))], 0, 2**62
    )
    victim = dict(web.labels)["node"]
    elapsed = rig.sim.clock.now() - cluster.start_time
    fault = FaultSpec(type="kubelet-garbage", nodes=(victim,), at=elapsed)
    await asyncio.to_thread(rig.sim.call, lambda: cluster.inject(fault))
    await _cycles(rig, 2)
    [series] = rig.store.select([name_is(names_kubelet.MEMORY_RSS), *_same(web)], 0, 2**62)
    stale = stale_mask(series.values)
    assert stale[-1] and not stale[:-1].any()
    cadvisor = rig.stats[0].health
    assert cadvisor.job == "cadvisor"
    assert cadvisor.errors.get("parse_error", 0) == 1
    assert cadvisor.up[victim] is False


def _a_web_pod(rig: Rig) -> str:
    rows = _labels(rig, names_kubelet.MEMORY_RSS, eq("namespace", "shop"))
    return sorted(r["pod"] for r in rows if r["pod"].startswith("web-"))[0]


def _same(series: object) -> list[object]:
    return [eq(k, v) for k, v in series.labels if k != "__name__"]  # type: ignore[attr-defined]


def test_targets_reach_kubelets_as_the_resource_scrape_does() -> None:
    clock = VirtualClock(start=START)
    store = Store(StoreSettings(), clock, persistent=False)
    node = NodeEndpoint("node-1", (("InternalIP", "10.0.0.7"),), 10250)
    try:
        for proxy, url, instance in (
            (False, "https://10.0.0.7:10250/metrics/cadvisor", "10.0.0.7:10250"),
            (True, "https://api:6443/api/v1/nodes/node-1/proxy/metrics/cadvisor", "node-1"),
        ):
            settings = CollectorSettings(kubelet_via_proxy=proxy, token_file=None)
            collector = CadvisorCollector(
                None,  # type: ignore[arg-type]  # targets() scrapes nothing
                store,
                clock,
                settings,
                lambda: [node],
                30,
                api_server="https://api:6443",
                headers=lambda: {"Authorization": "Bearer t"},
            )
            [(target, labels)] = collector.targets()
            assert (target.url, labels.instance, labels.node) == (url, instance, "node-1")
            assert target.headers == (("Authorization", "Bearer t"),)
    finally:
        store.close()


@pytest.mark.parametrize("path", [names_kubelet.CADVISOR_PATH, names_kubelet.SUMMARY_PATH])
async def test_rows_past_the_series_limit_are_dropped_and_counted(path: str) -> None:
    cadvisor = path == names_kubelet.CADVISOR_PATH
    fixture = "kubelet_metrics_cadvisor" if cadvisor else "kubelet_stats_summary"
    body = require_data(f"k8s/nri-kubernetes-1_35/{fixture}").read_bytes()
    clock = VirtualClock(start=START)
    limit = 40
    store = Store(StoreSettings(max_series=limit), clock, persistent=False)
    settings = CollectorSettings(
        kubelet_scheme="http", stagger_seconds=0, token_file=None, cadvisor_interval_seconds=30
    )
    nodes = [NodeEndpoint(f"node-{i}", (("InternalIP", f"10.0.0.{i}"),), 10250) for i in (1, 2)]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    try:
        async with httpx.AsyncClient(transport=transport) as http:
            health = ScrapeHealth("stats")
            scraper = collection_scraper(http, clock, settings, health)
            [collector] = [
                c
                for c in kubelet_stats_collectors(
                    lambda job: scraper, store, clock, settings, lambda: nodes
                )
                if c.path == path
            ]
            written = await collector.collect()
            # The first node's rows fill the store; what is past the limit is counted.
            assert written == limit
            assert store.stats().series == limit
            assert health.samples_rejected["series_limit"] > 0
            assert all(health.up.values()) and len(health.up) == 2
            # The summary asks again for the rows left out, each time; cAdvisor's rows are
            # remembered as dropped until the store forgets series (a new generation).
            rejected = health.samples_rejected["series_limit"]
            clock.advance(60)
            assert await collector.collect() == limit
            again = health.samples_rejected["series_limit"]
            assert again == (rejected if cadvisor else 2 * rejected)
    finally:
        store.close()


async def test_a_first_cadvisor_read_runs_in_a_worker_thread_and_the_next_on_the_loop() -> None:
    """A node's first response is read line by line (tens of milliseconds): off the event
    loop; the next, laid out the same, by position on the loop."""
    body = require_data("k8s/nri-kubernetes-1_35/kubelet_metrics_cadvisor").read_bytes()
    clock = VirtualClock(start=START)
    store = Store(StoreSettings(), clock, persistent=False)
    settings = CollectorSettings(kubelet_scheme="http", stagger_seconds=0, token_file=None)
    nodes = [NodeEndpoint(f"node-{i}", (("InternalIP", f"10.0.0.{i}"),), 10250) for i in (1, 2)]
    on_loop: list[bool] = []

    class Watched(CadvisorCollector):
        def _decode(self, body: bytes, state: object, target: object) -> object:  # type: ignore[override]
            on_loop.append(threading.current_thread() is threading.main_thread())
            return super()._decode(body, state, target)  # type: ignore[arg-type]

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    try:
        async with httpx.AsyncClient(transport=transport) as http:
            health = ScrapeHealth("cadvisor")
            scraper = collection_scraper(http, clock, settings, health)
            collector = Watched(scraper, store, clock, settings, lambda: nodes, 30)
            first = await collector.collect()
            assert on_loop == [False, False]
            clock.advance(30)
            assert await collector.collect() == first > 0
            assert on_loop == [False, False]  # read by position: no line-by-line read
            assert all(health.up.values()) and len(health.up) == 2
    finally:
        store.close()
