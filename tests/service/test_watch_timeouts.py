"""A watch that the server ends at its ``timeoutSeconds`` is normal operation: each kind's
watch resumes on its own, nothing is logged above INFO and ``foresight_watch_errors_total``
stays empty. A failing watch of one kind never restarts the others (see also
``tests/collectors/test_cluster.py`` for 410 Gone)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from kubernetes import client

from collectors.cluster import ClusterWatcher
from collectors.settings import KubernetesSettings
from collectors.state_metrics import health_families
from runtime import names
from runtime.clock import VirtualClock
from simulator.background import BackgroundCluster
from simulator.faults import FaultSpec
from tests.collectors.test_cluster import _until, api, sim  # noqa: F401 (fixtures)

TIMEOUT_S = 5


def _watch_errors(watcher: ClusterWatcher) -> list[tuple[dict[str, str], float]]:
    [family] = [
        f for f in health_families([], watcher.health, None) if f.name == names.WATCH_ERRORS
    ]
    return family.samples


async def test_watch_timeouts_are_no_errors(
    sim: BackgroundCluster,  # noqa: F811
    api: client.ApiClient,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(start=1_740_000_000.0)
    settings = KubernetesSettings(watch_timeout_seconds=TIMEOUT_S, resync_seconds=3600)
    watcher = ClusterWatcher(api, clock, settings)
    watcher.start()
    try:
        await asyncio.wait_for(watcher.wait_synced(), 30)
        caplog.clear()
        await _until(lambda: all(n >= 1 for n in watcher.health.watches.values()))
        # Three timeouts of every watch, on the server's clock. A watch's deadline runs from
        # when its request reached the server, so time moves on until each has ended thrice.
        for _ in range(40):
            if all(n >= 4 for n in watcher.health.watches.values()):
                break
            await asyncio.to_thread(sim.advance, TIMEOUT_S + 1)
            await asyncio.sleep(0.3)
        assert all(n >= 4 for n in watcher.health.watches.values()), watcher.health.watches
        assert watcher.health.errors == {}
        assert _watch_errors(watcher) == []
        assert sum(watcher.health.lists.values()) == len(watcher.health.lists)  # no relist
        noisy = [r for r in caplog.records if r.levelno > logging.INFO]
        assert noisy == [], [r.getMessage() for r in noisy]
    finally:
        await watcher.stop()
        await clock.aclose()


async def test_an_error_event_on_one_kind_leaves_the_other_watches_alone(
    sim: BackgroundCluster,  # noqa: F811
    api: client.ApiClient,  # noqa: F811
) -> None:
    assert sim.cluster is not None
    cluster = sim.cluster
    clock = VirtualClock(start=1_740_000_000.0)
    # Watches that the server does not end on its own while the test runs.
    settings = KubernetesSettings(watch_timeout_seconds=600, retry_initial_seconds=0.5)
    watcher = ClusterWatcher(api, clock, settings)
    watcher.start()
    try:
        await asyncio.wait_for(watcher.wait_synced(), 30)
        await _until(lambda: all(n >= 1 for n in watcher.health.watches.values()))
        elapsed = sim.clock.now() - cluster.start_time
        # New Node watches fail for 20 s; every watch is cut once, and only Node's keeps failing.
        outage = FaultSpec(
            type="api-error",
            code=500,
            verbs=("watch",),
            resources=("nodes",),
            at=elapsed,
            duration=20,
        )
        await asyncio.to_thread(sim.call, lambda: cluster.inject(outage))
        cut = FaultSpec(type="watch-disconnect", at=elapsed)
        await asyncio.to_thread(sim.call, lambda: cluster.inject(cut))
        await asyncio.to_thread(sim.advance, 2)
        await _until(lambda: watcher.health.errors.get(("Node", "server_error"), 0) >= 1)
        await asyncio.sleep(1.0)  # the other kinds resume from the cut
        others = {k: n for k, n in watcher.health.watches.items() if k != "Node"}
        failed = watcher.health.errors[("Node", "server_error")]
        # Node's watch fails again and again (its backoff runs on the test's clock).
        await _until(lambda: watcher.health.errors[("Node", "server_error")] >= failed + 2)
        assert {k: n for k, n in watcher.health.watches.items() if k != "Node"} == others
        assert {kind for kind, _ in watcher.health.errors} == {"Node"}
    finally:
        await watcher.stop()
        await clock.aclose()


async def test_an_unexpected_failure_restarts_that_kind_alone_with_a_fresh_list(
    sim: BackgroundCluster,  # noqa: F811
    api: client.ApiClient,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(start=1_740_000_000.0)
    settings = KubernetesSettings(watch_timeout_seconds=600, retry_initial_seconds=0.5)
    watcher = ClusterWatcher(api, clock, settings)
    model_apply = watcher.model.apply
    crashed: list[str] = []

    def crash_once(kind: str, event_type: str, obj: dict[str, Any]) -> None:
        if kind == "Pod" and not crashed:
            crashed.append(event_type)
            raise RuntimeError("injected")
        model_apply(kind, event_type, obj)

    watcher.model.apply = crash_once  # type: ignore[method-assign]
    watcher.start()
    try:
        await asyncio.wait_for(watcher.wait_synced(), 30)
        await _until(lambda: all(n >= 1 for n in watcher.health.watches.values()))
        await asyncio.sleep(0.5)
        watches = dict(watcher.health.watches)
        apps = client.AppsV1Api(api)
        await asyncio.to_thread(
            apps.patch_namespaced_deployment_scale, "web", "shop", {"spec": {"replicas": 3}}
        )
        await asyncio.to_thread(sim.advance, 30)
        await _until(lambda: watcher.health.lists.get("Pod", 0) >= 2)
        await _until(lambda: len([p for p in watcher.model.pods() if p.namespace == "shop"]) == 3)
        assert crashed and watcher.health.errors == {("Pod", "internal"): 1}
        [record] = [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
        assert record.exc_info is not None  # with its traceback
        assert {k: n for k, n in watcher.health.watches.items() if k != "Pod"} == {
            k: n for k, n in watches.items() if k != "Pod"
        }
    finally:
        await watcher.stop()
        await clock.aclose()
