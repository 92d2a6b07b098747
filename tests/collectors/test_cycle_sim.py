"""A whole collection cycle against the simulated cluster, through the real clients."""

from __future__ import annotations

import asyncio
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from collectors import cycle
from collectors.cluster import ClusterWatcher
from collectors.cluster_model import ClusterModel
from collectors.cycle import CollectionCycle
from collectors.scrape import ScrapeHealth
from runtime import names
from runtime.clock import VirtualClock
from runtime.families import (
    FamiliesCollector,
    Family,
    built,
    exposition,
    exposition_async,
)
from simulator.background import BackgroundCluster
from simulator.faults import FaultSpec
from simulator.scenario import parse_scenario
from tests.support.collection import collecting
from tsdb import Store, StoreSettings, eq, name_is, stale_mask

SCENARIO = """
name: collected
seed: 3
tick: 5s
nodes:
  - {name: node, count: 3, cpu: "8", memory: 16Gi}
namespaces: [shop]
workloads:
  - name: web
    namespace: shop
    replicas: 3
    requests: {cpu: 500m, memory: 256Mi}
    limits: {cpu: "2", memory: 1Gi}
    startupSeconds: 10
    load: {pattern: constant, peak: 1.5, noise: 0}
    memory: {base: 100Mi, perCore: 100Mi}
"""
START = 1_750_000_000.0


@pytest.fixture
def sim() -> Iterator[BackgroundCluster]:
    clock = VirtualClock(start=START, speed=None, autoadvance=False)
    with BackgroundCluster(parse_scenario(SCENARIO, "collected.yaml"), clock) as bg:
        bg.advance(60)
        yield bg


@dataclass
class Rig:
    sim: BackgroundCluster
    cycle: CollectionCycle
    store: Store
    health: ScrapeHealth
    watcher: ClusterWatcher


@pytest.fixture
async def rig(sim: BackgroundCluster, tmp_path: Path) -> AsyncIterator[Rig]:
    store = Store(StoreSettings(), sim.clock, persistent=False)
    async with collecting(sim, store, tmp_path / "sim.kubeconfig", START) as c:
        yield Rig(sim, c.cycle, store, c.health, c.watcher)
    store.close()


async def _cycles(rig: Rig, n: int) -> None:
    for _ in range(n):
        await rig.cycle.run_once()
        await asyncio.to_thread(rig.sim.advance, 15)


async def test_workload_usage_reaches_the_store_and_metrics(rig: Rig) -> None:
    await _cycles(rig, 4)
    [web] = rig.store.select(
        [
            name_is(names.WORKLOAD_CPU_CORES),
            eq("workload", "web"),
            eq("workload_kind", "Deployment"),
        ],
        0,
        2**62,
    )
    # 1.5 cores of load spread over the web pods, once two scrapes gave a rate.
    assert web.values[-1] == pytest.approx(1.5, rel=0.2)
    nodes = rig.store.select([name_is(names.NODE_MEMORY)], 0, 2**62)
    assert len(nodes) == 3
    [desired] = rig.store.select(
        [name_is("foresight_workload_replicas_desired"), eq("workload", "web")], 0, 2**62
    )
    assert desired.values[-1] == 3
    registry = CollectorRegistry()
    registry.register(FamiliesCollector(rig.cycle.families))
    exposed = {
        s.name: s
        for family in text_string_to_metric_families(exposition(registry).decode())
        for s in family.samples
        if s.labels.get("workload") == "web" or "workload" not in s.labels
    }
    assert exposed[names.WORKLOAD_CPU_CORES].value == pytest.approx(1.5, rel=0.2)
    assert exposed["foresight_scrape_attempts_total"].value == 12
    assert rig.health.up == {n.name: True for n in rig.watcher.model.nodes()}


async def test_metrics_families_are_built_by_the_renderer_from_the_last_cycle(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before the first cycle, only the replica's own health.
    assert {f.name for f in built(rig.cycle.families())} <= {
        f.name for f in rig.cycle.health().build()
    }
    await _cycles(rig, 2)
    shown = {f.name for f in built(rig.cycle.families())}
    assert {names.WORKLOAD_CPU_CORES, names.NODE_CAPACITY} <= shown
    loop_thread = threading.get_ident()
    on_loop: list[str] = []

    def watched(name: str, build: Callable[..., list[Family]]) -> Callable[..., list[Family]]:
        def call(*args: object) -> list[Family]:
            if threading.get_ident() == loop_thread:
                on_loop.append(name)
            return build(*args)

        return call

    for name in ("usage_families", "cluster_families", "health_families"):
        monkeypatch.setattr(f"collectors.cycle.{name}", watched(name, getattr(cycle, name)))
    registry = CollectorRegistry()
    registry.register(FamiliesCollector(rig.cycle.families))
    text = (await exposition_async(registry)).decode()
    assert f"# TYPE {names.WORKLOAD_CPU_CORES} gauge" in text
    assert on_loop == []
    assert text == exposition(registry).decode()


async def test_the_views_of_a_replaced_snapshot_are_freed_off_the_loop(rig: Rig) -> None:
    await _cycles(rig, 2)
    snapshot = rig.cycle.snapshot()
    assert snapshot is not None
    freed_in: list[int] = []
    everyone = threading.Event()
    count = len(snapshot[0])
    assert count > 0

    def note() -> None:
        freed_in.append(threading.get_ident())
        if len(freed_in) == count:
            everyone.set()

    for view in snapshot[0].values():
        weakref.finalize(view, note)
    del snapshot, view
    # The next cycle scrapes every node anew and replaces the snapshot that held the last
    # references to the old views.
    await _cycles(rig, 1)
    assert await asyncio.to_thread(everyone.wait, 30), f"{len(freed_in)} of {count} freed"
    assert threading.get_ident() not in freed_in


async def test_a_down_node_is_stale_never_zero(rig: Rig) -> None:
    await _cycles(rig, 3)
    assert rig.sim.cluster is not None
    cluster = rig.sim.cluster
    victim = rig.watcher.model.nodes()[0].name
    elapsed = rig.sim.clock.now() - cluster.start_time
    fault = FaultSpec(type="kubelet-error", code=500, nodes=(victim,), at=elapsed)
    await asyncio.to_thread(rig.sim.call, lambda: cluster.inject(fault))
    await _cycles(rig, 2)
    [series] = rig.store.select([name_is(names.NODE_MEMORY), eq("node", victim)], 0, 2**62)
    stale = stale_mask(series.values)
    assert stale[-1] and not stale[:-1].any()
    assert all(v > 0 for v in series.values[~stale])
    assert rig.health.errors.get("server_error", 0) >= 1
    assert rig.health.up[victim] is False


def test_a_model_snapshot_keeps_what_the_model_held_when_it_was_taken() -> None:
    model = ClusterModel()
    node = {"metadata": {"name": "a"}, "status": {"addresses": [], "capacity": {"cpu": "2"}}}
    model.apply("Node", "ADDED", node)
    snapshot = model.snapshot()
    model.apply("Node", "ADDED", {**node, "metadata": {"name": "b"}})
    model.apply("Node", "DELETED", node)
    assert [n.name for n in snapshot.nodes()] == ["a"]
    assert [n.name for n in model.nodes()] == ["b"]


def test_a_model_snapshot_touches_no_record_and_a_change_copies_a_few() -> None:
    # Touching a record (its reference count) while a child forked for /metrics shares the
    # parent's pages copies its page: a snapshot of 30,000 pods that copied every one took
    # 20-35 ms of the event loop's time.
    model = ClusterModel()
    for i in range(1000):
        node = {"metadata": {"name": f"n{i}"}, "status": {"capacity": {"cpu": "2"}}}
        model.apply("Node", "ADDED", node)
    first = model.objects["Node"][("", "n0")]
    records = list(model.objects["Node"].values())
    counts = [sys.getrefcount(r) for r in records]
    snapshot = model.snapshot()
    assert [sys.getrefcount(r) for r in records] == counts
    model.apply("Node", "DELETED", {"metadata": {"name": "n0"}})
    after = [sys.getrefcount(r) for r in records]
    copied = sum(a != c for a, c in zip(after, counts, strict=True))
    assert 0 < copied < len(records) // 8
    assert len(snapshot.nodes()) == 1000 and len(model.nodes()) == 999
    assert snapshot.objects["Node"].get(("", "n0")) is first
    del first
    model.replace("Node", [])
    assert len(snapshot.nodes()) == 1000 and model.nodes() == []
