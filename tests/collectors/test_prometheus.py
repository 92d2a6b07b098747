"""A real Prometheus (Debian package) scrapes foresight's /metrics; the Prometheus source
reads it back over the HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from autoscaler.service import metrics_app
from collectors.cluster_model import ClusterModel
from collectors.prometheus_source import PrometheusSource, PrometheusSourceError
from collectors.scrape import ScrapeHealth
from collectors.state_metrics import cluster_families, health_families
from runtime.backoff import Backoff
from runtime.clock import RealClock, VirtualClock
from runtime.families import FamiliesCollector
from tests.support.prometheus import free_port, running_prometheus
from tsdb import Store, StoreSettings, name_is

NODE = {
    "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}},
    "status": {
        "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
        "allocatable": {"cpu": "3900m", "memory": "15Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}],
    },
}
POD = {
    "metadata": {"name": "web-1", "namespace": "shop"},
    "spec": {
        "nodeName": "n1",
        "containers": [
            {"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}
        ],
    },
    "status": {"phase": "Running", "containerStatuses": [{"name": "app", "restartCount": 2}]},
}


@pytest.fixture
async def exporter() -> AsyncIterator[str]:
    model = ClusterModel()
    model.replace("Node", [NODE])
    model.replace("Pod", [POD])
    health = ScrapeHealth("kubelet", attempts=3, errors={"timeout": 1})
    registry = CollectorRegistry()
    registry.register(
        FamiliesCollector(
            lambda: [*cluster_families(model), *health_families([health], None, None)]
        )
    )
    runner = web.AppRunner(metrics_app(registry), access_log=None, handle_signals=False)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
def prometheus(exporter: str, tmp_path: Path) -> Iterator[str]:
    config = (
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: foresight\n    static_configs: [{{targets: ['{exporter}']}}]\n"
    )
    with running_prometheus(tmp_path, config) as url:
        yield url


async def _scraped(url: str) -> dict[str, object]:
    """Wait until Prometheus has scraped the exporter once (real time: it is a real server)."""
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                response = await client.get(f"{url}/api/v1/targets")
                targets = response.json()["data"]["activeTargets"]
                if targets and targets[0]["health"] == "up":
                    target: dict[str, object] = targets[0]
                    return target
            except (httpx.TransportError, KeyError, ValueError):
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("Prometheus never scraped /metrics successfully")


async def test_prometheus_scrapes_metrics_without_errors(prometheus: str) -> None:
    target = await _scraped(prometheus)
    assert target["lastError"] == ""
    clock = RealClock()  # Prometheus stamps samples with the wall clock
    async with httpx.AsyncClient() as client:
        source = PrometheusSource(client, prometheus, clock, Backoff(0.1, 1, attempts=3))
        for _ in range(100):
            rows = await source.instant('foresight_node_allocatable{resource="cpu"}', clock.now())
            if rows:
                break
            await asyncio.sleep(0.1)
        [(labels, _, value)] = rows
        assert dict(labels)["node"] == "n1" and value == 3.9
        [(_, _, restarts)] = await source.instant("foresight_container_restarts_total", clock.now())
        assert restarts == 2
        [(_, _, errors)] = await source.instant(
            'foresight_scrape_errors_total{reason="timeout"}', clock.now()
        )
        assert errors == 1
        [(_, _, samples)] = await source.instant(
            'scrape_samples_post_metric_relabeling{job="foresight"}', clock.now()
        )
        assert samples > 10


async def test_range_queries_and_backfill(prometheus: str) -> None:
    await _scraped(prometheus)
    clock = RealClock()  # Prometheus stamps samples with the wall clock
    store = Store(StoreSettings(), clock, persistent=False)
    async with httpx.AsyncClient() as client:
        source = PrometheusSource(client, prometheus, clock, Backoff(0.1, 1, attempts=3))
        await asyncio.sleep(2.5)  # a few real scrapes to read back
        now = await source.instant("time()", clock.now())
        end = now[0][2]
        series = await source.range('foresight_node_capacity{resource="memory"}', end - 10, end, 1)
        assert len(series) == 1 and set(series[0].values.tolist()) == {16 * 2**30}
        written = await source.backfill(store, "foresight_node_capacity", end - 10, end, 1)
        assert written >= 3 * 2
        assert len(store.select([name_is("foresight_node_capacity")], 0, 2**62)) == 3
        with pytest.raises(PrometheusSourceError, match="bad_data"):
            await source.instant("rate(foo[", end)
        with pytest.raises(PrometheusSourceError, match="pass a name"):
            await source.backfill(store, "sum(foresight_node_capacity)", end - 5, end, 1)
    store.close()


async def test_unreachable_server_is_retried_then_reported() -> None:
    clock = VirtualClock()
    async with httpx.AsyncClient() as client:
        source = PrometheusSource(
            client, f"http://127.0.0.1:{free_port()}", clock, Backoff(1, 4, attempts=2)
        )
        with pytest.raises(PrometheusSourceError, match="unreachable"):
            await source.instant("up", 0)
    assert clock.now() >= 3  # waited 1 s then 2 s on the clock
    await clock.aclose()
