"""Scraping annotated pods: a local server plays the application."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from aiohttp import web

from collectors.cluster_model import PodInfo
from collectors.pods import PodMetricsCollector, pod_target, target_labels
from collectors.scrape import ScrapeHealth, Scraper
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings, eq, name_is, stale_mask

POD = PodInfo(
    namespace="shop",
    name="api-1",
    uid="u1",
    node="n1",
    phase="Running",
    ready=True,
    owner=("ReplicaSet", "api-abc"),
    labels={},
    annotations={
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "0",
        "prometheus.io/path": "stats",
    },
    pod_ip="127.0.0.1",
    containers=(),
    start_time=None,
)


def test_target_from_annotations() -> None:
    target = pod_target(replace(POD, annotations={**POD.annotations, "prometheus.io/port": "9102"}))
    assert target is not None and target.url == "http://127.0.0.1:9102/stats"
    assert target.key == "shop/api-1"
    assert pod_target(replace(POD, phase="Pending")) is None
    assert pod_target(replace(POD, annotations={"prometheus.io/scrape": "false"})) is None
    assert pod_target(replace(POD, annotations={"prometheus.io/scrape": "true"})) is None  # no port
    v6 = pod_target(
        replace(POD, pod_ip="fd00::5", annotations={**POD.annotations, "prometheus.io/port": "80"})
    )
    assert v6 is not None and v6.url == "http://[fd00::5]:80/stats"


def test_clashing_labels_are_kept_as_exported() -> None:
    labels = target_labels((("namespace", "app-ns"), ("route", "/buy")), POD)
    assert labels == {
        "exported_namespace": "app-ns",
        "route": "/buy",
        "namespace": "shop",
        "pod": "api-1",
        "node": "n1",
    }


@pytest.fixture
async def app_server() -> AsyncIterator[tuple[dict[str, str], int]]:
    state = {"body": 'http_requests_total{route="/buy"} 10\nqueue_length 3\n'}

    async def stats(_: web.Request) -> web.Response:
        return web.Response(text=state["body"])

    app = web.Application()
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    yield state, sock.getsockname()[1]
    await runner.cleanup()


async def test_scrapes_stores_and_marks_vanished_series_stale(
    app_server: tuple[dict[str, str], int],
) -> None:
    state, port = app_server
    pod = replace(POD, annotations={**POD.annotations, "prometheus.io/port": str(port)})
    pods = [pod]
    clock = VirtualClock(start=1_750_000_000, autoadvance=False)
    store = Store(StoreSettings(), clock, persistent=False)
    health = ScrapeHealth("pod")
    async with httpx.AsyncClient() as client:
        scraper = Scraper(
            client,
            clock,
            health,
            concurrency=2,
            timeout_s=2,
            stagger_s=0,
            max_bytes=1 << 20,
            backoff_initial_s=1,
            backoff_max_s=5,
        )
        collector = PodMetricsCollector(scraper, store, clock, lambda: pods)
        assert await collector.collect() == 2
        clock.advance(15)
        state["body"] = 'http_requests_total{route="/buy"} 25\n'
        assert await collector.collect() == 1
        clock.advance(15)
        state["body"] = "garbage{{{\n"
        assert await collector.collect() == 0
        assert health.errors == {"parse_error": 1}
    [requests] = store.select(
        [name_is("http_requests_total"), eq("pod", "api-1"), eq("namespace", "shop")], 0, 2**62
    )
    assert requests.values[:2].tolist() == [10, 25] and stale_mask(requests.values).tolist() == [
        False,
        False,
        True,
    ]
    [queue] = store.select([name_is("queue_length")], 0, 2**62)
    assert stale_mask(queue.values).tolist() == [False, True]
    store.close()
