"""Scraping annotated pods: the relabelling of targets, and a local server playing the
application."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from aiohttp import web

from collectors.cluster_model import ContainerInfo, PodInfo
from collectors.pods import (
    PodMetricsCollector,
    job_of,
    pod_labels,
    pod_target,
    target_labels,
)
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


def test_the_port_defaults_to_the_first_declared_container_port() -> None:
    sidecar = ContainerInfo("proxy", {}, {}, ports=(15090,))
    app = ContainerInfo("api", {}, {}, ports=(8080, 9102))
    pod = replace(POD, annotations={"prometheus.io/scrape": "true"}, containers=(sidecar, app))
    target = pod_target(pod)
    assert target is not None and target.url == "http://127.0.0.1:15090/metrics"
    assert pod_labels(pod, None)["container"] == "proxy"
    annotated = replace(pod, annotations={**pod.annotations, "prometheus.io/port": "9102"})
    assert pod_labels(annotated, None)["container"] == "api"
    undeclared = replace(pod, annotations={**pod.annotations, "prometheus.io/port": "7000"})
    assert "container" not in pod_labels(undeclared, None)
    assert (
        pod_target(replace(pod, annotations={**pod.annotations, "prometheus.io/port": "x"})) is None
    )


def test_job_is_the_annotation_then_the_app_labels_then_the_workload() -> None:
    deployment = ("Deployment", "api")
    labelled = replace(POD, labels={"app": "api-legacy", "app.kubernetes.io/name": "api"})
    assert job_of(labelled, deployment) == "api"
    assert job_of(replace(POD, labels={"app": "api"}), ("Deployment", "shop-api")) == "api"
    assert job_of(POD, deployment) == "api"  # no label: the Deployment, not its ReplicaSet
    assert job_of(POD, None) == "api-1"  # a bare pod: its own name
    named = replace(labelled, annotations={**POD.annotations, "prometheus.io/job": "checkout"})
    assert job_of(named, deployment) == "checkout"


def test_clashing_labels_are_kept_as_exported() -> None:
    pod = replace(
        POD, labels={"app": "api"}, containers=(ContainerInfo("api", {}, {}, ports=(0,)),)
    )
    sample = (("job", "worker"), ("namespace", "app-ns"), ("pod", "p"), ("route", "/buy"))
    labels = target_labels(sample, pod_labels(pod, ("Deployment", "api")))
    assert labels == {
        "exported_job": "worker",
        "exported_namespace": "app-ns",
        "exported_pod": "p",
        "route": "/buy",
        "job": "api",
        "namespace": "shop",
        "pod": "api-1",
        "node": "n1",
        "container": "api",
    }


def _scraper(client: httpx.AsyncClient, clock: VirtualClock, health: ScrapeHealth) -> Scraper:
    return Scraper(
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


@pytest.fixture
async def app_server() -> AsyncIterator[tuple[dict[str, str], int]]:
    state = {"body": 'http_requests_total{route="/buy"} 10\nqueue_length 3\n'}

    async def stats(_: web.Request) -> web.Response:
        return web.Response(text=state["body"], status=int(state.get("status", "200")))

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
        scraper = _scraper(client, clock, health)
        collector = PodMetricsCollector(
            scraper, store, clock, lambda: pods, workload_of=lambda _: ("Deployment", "api")
        )
        assert await collector.collect() == 2
        clock.advance(15)
        state["body"] = 'http_requests_total{route="/buy"} 25\n'
        assert await collector.collect() == 1
        clock.advance(15)
        state["body"] = "garbage{{{\n"
        assert await collector.collect() == 0
        assert health.errors == {"parse_error": 1}
    [requests] = store.select(
        [name_is("http_requests_total"), eq("pod", "api-1"), eq("job", "api"), eq("node", "n1")],
        0,
        2**62,
    )
    assert requests.values[:2].tolist() == [10, 25] and stale_mask(requests.values).tolist() == [
        False,
        False,
        True,
    ]
    [queue] = store.select([name_is("queue_length")], 0, 2**62)
    assert stale_mask(queue.values).tolist() == [False, True]
    store.close()


async def test_the_pods_own_error_is_a_failed_scrape(
    app_server: tuple[dict[str, str], int],
) -> None:
    state, port = app_server
    pod = replace(POD, annotations={**POD.annotations, "prometheus.io/port": str(port)})
    clock = VirtualClock(start=1_750_000_000, autoadvance=False)
    store = Store(StoreSettings(), clock, persistent=False)
    health = ScrapeHealth("pod")
    async with httpx.AsyncClient() as client:
        scraper = _scraper(client, clock, health)
        collector = PodMetricsCollector(scraper, store, clock, lambda: [pod])
        assert await collector.collect() == 2
        assert health.up == {"shop/api-1": True}
        clock.advance(15)
        state["status"] = "500"
        assert await collector.collect() == 0
        assert health.up == {"shop/api-1": False} and health.errors == {"server_error": 1}
    [requests] = store.select([name_is("http_requests_total")], 0, 2**62)
    assert stale_mask(requests.values).tolist() == [False, True]
    store.close()
