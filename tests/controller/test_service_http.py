"""The service's HTTP endpoints: /healthz, /readyz and /metrics with the autoscaler series."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime.families import Deferred, FamiliesCollector, Family
from tests.controller.conftest import Rig, horizontal, pas
from tests.support.processes import ended


async def test_health_readiness_and_metrics(rig: Rig) -> None:
    await rig.create(pas("web", horizontal()))
    for _ in range(5):
        await rig.step(120)
    port = await rig.service.serve_http()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).text == "ok\n"
        body = (await http.get("/metrics")).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    base = (("autoscaler", "web"), ("namespace", "shop"))
    assert samples[("foresight_autoscaler_max_replicas", base)] == 30
    assert samples[("foresight_autoscaler_current_replicas", base)] >= 2
    assert samples[("foresight_autoscaler_load", base)] > 0
    forecast = (
        "foresight_autoscaler_forecast",
        (*base[:1], ("namespace", "shop"), ("quantile", "0.9995")),
    )
    assert samples[forecast] > 0
    ups = [
        v
        for (name, labels), v in samples.items()
        if name == "foresight_autoscaler_decisions_total" and ("direction", "up") in labels
    ]
    assert sum(ups) >= 1
    # Collector series are served by the same endpoint.
    assert any(name == "foresight_node_cpu_usage_cores" for name, _ in samples)
    # The autoscaler's own series reach the store, for rules and dashboards.
    result = rig.service.engine.instant(
        'foresight_autoscaler_desired_replicas{autoscaler="web"}', round(rig.clock.now() * 1000)
    )
    assert len(result.series) == 1


async def test_a_render_in_flight_at_shutdown_is_cut_off_and_its_child_killed(rig: Rig) -> None:
    r, w = os.pipe()

    def hangs() -> list[Family]:
        os.write(w, str(os.getpid()).encode())
        while True:
            time.sleep(1)

    rig.service.registry.register(FamiliesCollector(lambda: [Deferred(hangs)]))
    rig.service.http_drain_seconds = 0.2
    port = await rig.service.serve_http()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        scrape = asyncio.ensure_future(http.get("/metrics"))
        try:
            child = int(await asyncio.to_thread(os.read, r, 32))
        finally:
            os.close(r)
            os.close(w)
        # Closing waits for the request no longer than the drain time, not for the render.
        await asyncio.wait_for(rig.service.close(), 20)
        with pytest.raises(httpx.HTTPError):
            await scrape
    assert await ended(child), f"the render's child {child} still runs after the service closed"
