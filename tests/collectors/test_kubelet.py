"""The kubelet collector against a local server that answers, fails or stalls on purpose."""

from __future__ import annotations

import asyncio
import math
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import httpx
import numpy as np
import pytest
import yarl
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from collectors import kubelet as kubelet_module
from collectors.kubelet import (
    KubeletCollector,
    NodeEndpoint,
    kubelet_client,
    kubelet_keepalive_seconds,
    kubelet_url,
)
from collectors.scrape import REASONS, ScrapeHealth, Scraper, classify
from collectors.settings import CollectorSettings
from collectors.transport import AiohttpTransport, map_aiohttp_error
from runtime import names
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings, eq, name_is, stale_mask

T0 = 1_700_000_000.0


@dataclass
class FakeKubelet:
    """Serves /metrics/resource for a few nodes; each node's behaviour can be switched."""

    cpu: dict[str, float] = field(default_factory=dict)
    mode: dict[str, str] = field(default_factory=dict)
    containers: dict[str, list[str]] = field(default_factory=dict)
    token: str | None = None
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    peers: list[object] = field(default_factory=list)
    clock: VirtualClock | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def body(self, node: str) -> str:
        assert self.clock is not None
        ts = int(self.clock.now() * 1000)
        lines = [
            "# TYPE node_cpu_usage_seconds_total counter",
            f"node_cpu_usage_seconds_total {self.cpu[node]} {ts}",
            f"node_memory_working_set_bytes 1.5e+09 {ts}",
        ]
        pod = f'namespace="shop",pod="{node}-pod"'
        for c in self.containers.get(node, ["app"]):
            labels = f'{{container="{c}",{pod}}}'
            lines += [
                f"container_cpu_usage_seconds_total{labels} {self.cpu[node] / 2} {ts}",
                f"container_memory_working_set_bytes{labels} 2.5e+07 {ts}",
                f"container_start_time_seconds{labels} {T0 - 3600} {ts}",
            ]
        lines += [
            f"pod_cpu_usage_seconds_total{{{pod}}} {self.cpu[node] / 2} {ts}",
            f"pod_memory_working_set_bytes{{{pod}}} 2.6e+07 {ts}",
        ]
        return "\n".join(lines) + "\n"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        node = request.match_info["node"]
        self.requests.append((node, request.headers.get("Authorization")))
        assert request.transport is not None
        self.peers.append(request.transport.get_extra_info("peername"))
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=401, text="Unauthorized")
        mode = self.mode.get(node, "ok")
        if mode == "garbage":
            return web.Response(text="node_cpu_usage_seconds_total{ 12 x\n\x00\x01")
        if mode == "nan":
            return web.Response(
                text="node_cpu_usage_seconds_total NaN\nnode_memory_working_set_bytes -1\n"
            )
        if mode == "500":
            return web.Response(status=503, text="busy", headers={"Retry-After": "120"})
        if mode == "403":
            return web.Response(status=403, text="Forbidden")
        if mode == "hang":
            await self.release.wait()
        if mode == "huge":
            return web.Response(text="# " + "x" * 4096 + "\n")
        return web.Response(text=self.body(node), content_type="text/plain")


@pytest.fixture
async def kubelet() -> AsyncIterator[tuple[FakeKubelet, str]]:
    fake = FakeKubelet()
    app = web.Application()
    app.router.add_get("/{node}/metrics/resource", fake.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    yield fake, f"http://127.0.0.1:{sock.getsockname()[1]}"
    fake.release.set()
    await runner.cleanup()


@dataclass
class Rig:
    collector: KubeletCollector
    store: Store
    clock: VirtualClock
    health: ScrapeHealth
    nodes: list[NodeEndpoint]
    fake: FakeKubelet


@pytest.fixture
def scrape_timeout() -> float:
    """Ample for a loopback answer on a loaded machine; a test of a kubelet that never
    answers waits it out in real time, and sets a shorter one."""
    return 10.0


@pytest.fixture(params=["httpx", "aiohttp"])
async def rig(
    kubelet: tuple[FakeKubelet, str], request: pytest.FixtureRequest, scrape_timeout: float
) -> AsyncIterator[Rig]:
    """The collector over httpx's own transport and over the aiohttp one it uses in service."""
    fake, base = kubelet
    transport = AiohttpTransport() if request.param == "aiohttp" else None
    clock = VirtualClock(start=T0, autoadvance=False)
    fake.clock = clock
    settings = CollectorSettings(
        kubelet_via_proxy=True,
        scrape_timeout_seconds=scrape_timeout,
        stagger_seconds=0,
        max_response_bytes=2048,
        token_file=None,
        backoff_initial_seconds=5,
    )
    store = Store(StoreSettings(), clock, persistent=False)
    health = ScrapeHealth("kubelet")
    nodes = [NodeEndpoint("n1", (("InternalIP", "10.0.0.1"),)), NodeEndpoint("n2", ())]
    for n in nodes:
        fake.cpu[n.name] = 100.0
    async with httpx.AsyncClient(transport=transport) as client:
        scraper = Scraper(
            client,
            clock,
            health,
            concurrency=4,
            timeout_s=settings.scrape_timeout_seconds,
            stagger_s=0,
            max_bytes=settings.max_response_bytes,
            backoff_initial_s=settings.backoff_initial_seconds,
            backoff_max_s=settings.backoff_max_seconds,
        )
        # The fake serves each node under /<node>/, standing in for the API server's proxy.
        collector = KubeletCollector(
            scraper, store, clock, settings, lambda: nodes, api_server=base, headers=lambda: {}
        )
        collector.targets = lambda: [  # type: ignore[method-assign]
            t.__class__(t.key, f"{base}/{t.key}/metrics/resource", t.headers)
            for t in KubeletCollector.targets(collector)
        ]
        yield Rig(collector, store, clock, health, nodes, fake)
    store.close()


@pytest.fixture(params=["one slice", "a slice per node"])
def slicing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest in one go, or let the loop in after every node: the results must not differ."""
    if request.param == "a slice per node":
        monkeypatch.setattr(kubelet_module, "INGEST_SLICE_SECONDS", 0.0)


async def _cycle(rig: Rig, cpu_step: float = 3.0) -> int:
    written = await rig.collector.collect()
    rig.clock.advance(15)
    for node in rig.fake.cpu:
        rig.fake.cpu[node] += cpu_step
    return written


def _values(store: Store, metric: str, **labels: str) -> list[float]:
    matchers = [name_is(metric), *(eq(k, v) for k, v in labels.items())]
    series = store.select(matchers, 0, 2**62)
    return [] if not series else series[0].values.tolist()


async def test_cpu_rates_memory_and_latest_view(rig: Rig, slicing: None) -> None:
    await _cycle(rig)
    await _cycle(rig)
    await _cycle(rig)
    # 3 core-seconds every 15 s on the node, half of it in the container.
    assert _values(rig.store, names.NODE_CPU_CORES, node="n1") == pytest.approx([0.2, 0.2])
    assert _values(
        rig.store, names.CONTAINER_CPU_CORES, node="n2", container="app"
    ) == pytest.approx([0.1, 0.1])
    assert _values(rig.store, names.NODE_MEMORY, node="n1") == [1.5e9] * 3
    assert _values(rig.store, names.POD_MEMORY, pod="n1-pod") == [2.6e7] * 3
    assert _values(rig.store, names.NODE_CPU_SECONDS, node="n1") == [100.0, 103.0, 106.0]
    view = rig.collector.latest["n1"]
    assert view.node_cpu_cores == pytest.approx(0.2)
    assert view.containers[("shop", "n1-pod", "app")][1] == 2.5e7
    assert rig.health.up == {"n1": True, "n2": True}


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("garbage", "parse_error"),
        ("500", "server_error"),
        ("403", "forbidden"),
        ("huge", "too_large"),
    ],
)
async def test_a_failing_node_is_counted_and_marked_stale_never_zero(
    rig: Rig, slicing: None, mode: str, reason: str
) -> None:
    await _failing_node(rig, mode, reason)


@pytest.mark.parametrize("scrape_timeout", [1.0])
async def test_a_node_that_never_answers_times_out_and_is_marked_stale(
    rig: Rig, slicing: None
) -> None:
    await _failing_node(rig, "hang", "timeout")


async def _failing_node(rig: Rig, mode: str, reason: str) -> None:
    await _cycle(rig)
    await _cycle(rig)
    rig.fake.mode["n1"] = mode
    await _cycle(rig)
    assert rig.health.errors == {reason: 1}
    assert rig.health.up["n1"] is False and rig.health.up["n2"] is True
    [series] = rig.store.select([name_is(names.NODE_MEMORY), eq("node", "n1")], 0, 2**62)
    assert stale_mask(series.values).tolist() == [False, False, True]
    assert "n1" not in rig.collector.latest
    # The healthy node went on as before.
    assert _values(rig.store, names.NODE_MEMORY, node="n2") == [1.5e9] * 3


async def test_backoff_honours_retry_after_then_recovers(rig: Rig) -> None:
    rig.fake.mode["n1"] = "500"
    await _cycle(rig)
    rig.fake.mode["n1"] = "ok"
    for _ in range(7):  # 105 s: still inside the 120 s Retry-After
        await _cycle(rig)
    assert rig.health.errors == {"server_error": 1, "backoff": 7}
    assert sum(1 for node, _ in rig.fake.requests if node == "n1") == 1
    await _cycle(rig)
    assert rig.health.up["n1"] is True


async def test_a_kubelet_answering_garbage_is_down_and_backs_off_further(
    rig: Rig, slicing: None
) -> None:
    await _cycle(rig)
    healthy_at = rig.health.last_success_s["n1"]
    rig.fake.mode["n1"] = "garbage"
    for _ in range(12):  # three minutes
        await _cycle(rig)
    # Never a success: the timestamp stays, and the pauses double (5, 10, 20, 40 s ...).
    assert rig.health.last_success_s["n1"] == healthy_at
    assert rig.health.up["n1"] is False
    asked = sum(1 for node, _ in rig.fake.requests if node == "n1")
    # The healthy scrape, then five in three minutes; at a fixed 5 s, every cycle would ask.
    assert asked == 1 + 5
    assert rig.health.errors["parse_error"] == 5
    rig.fake.mode["n1"] = "ok"
    for _ in range(12):
        await _cycle(rig)
    assert rig.health.up["n1"] is True
    assert rig.health.last_success_s["n1"] > healthy_at


async def test_bad_values_are_rejected_and_counted(rig: Rig) -> None:
    rig.fake.mode["n1"] = "nan"
    await _cycle(rig)
    assert rig.health.samples_rejected == {"invalid_value": 2}
    assert rig.store.select([name_is(names.NODE_MEMORY), eq("node", "n1")], 0, 2**62) == []


async def test_a_removed_container_and_a_removed_node_get_staleness_markers(
    rig: Rig, slicing: None
) -> None:
    rig.fake.containers["n1"] = ["app", "sidecar"]
    await _cycle(rig)
    rig.fake.containers["n1"] = ["app"]
    await _cycle(rig)
    [sidecar] = rig.store.select(
        [name_is(names.CONTAINER_MEMORY), eq("container", "sidecar")], 0, 2**62
    )
    assert stale_mask(sidecar.values).tolist() == [False, True]
    rig.nodes.pop()
    await _cycle(rig)
    [n2] = rig.store.select([name_is(names.NODE_MEMORY), eq("node", "n2")], 0, 2**62)
    assert stale_mask(n2.values).tolist() == [False, False, True]
    assert set(rig.collector.latest) == {"n1"}
    assert set(rig.health.up) == {"n1"}


async def test_ingest_lets_the_loop_run_between_slices(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kubelet_module, "INGEST_SLICE_SECONDS", 0.0)
    seen: list[set[str]] = []
    collecting = asyncio.create_task(rig.collector.collect())
    while not collecting.done():
        seen.append(set(rig.collector.latest))
        await asyncio.sleep(0)
    await collecting
    # Another task ran after the first node was ingested and before the second one was.
    assert {"n1"} in seen
    assert set(rig.collector.latest) == {"n1", "n2"}


async def test_kubelet_connections_outlive_a_cycle(kubelet: tuple[FakeKubelet, str]) -> None:
    fake, base = kubelet
    fake.clock = VirtualClock(start=T0, autoadvance=False)
    fake.cpu["n1"] = 1.0
    settings = CollectorSettings(kubelet_via_proxy=True, token_file=None, ca_file=None)
    # An idle connection outlives the pause until the next cycle, however late that starts.
    assert kubelet_keepalive_seconds(settings) > (
        settings.scrape_interval_seconds + settings.scrape_timeout_seconds
    )
    async with kubelet_client(settings) as client:
        for _ in range(3):
            response = await client.get(f"{base}/n1/metrics/resource")
            assert response.status_code == 200
    assert len(fake.peers) == 3 and len(set(fake.peers)) == 1


async def test_unauthorized_without_the_token(rig: Rig) -> None:
    rig.fake.token = "secret"
    await _cycle(rig)
    assert rig.health.errors == {"unauthorized": 2}


def test_direct_url_prefers_address_types_in_order() -> None:
    settings = CollectorSettings()
    node = NodeEndpoint(
        "n", (("Hostname", "n.local"), ("ExternalIP", "1.2.3.4"), ("InternalIP", "10.0.0.7")), 10255
    )
    assert kubelet_url(node, settings, None) == "https://10.0.0.7:10255/metrics/resource"
    v6 = NodeEndpoint("n", (("InternalIP", "fd00::1"),))
    assert kubelet_url(v6, settings, None) == "https://[fd00::1]:10250/metrics/resource"
    only_name = NodeEndpoint("n", (("Hostname", "n.local"),))
    assert kubelet_url(only_name, settings, None).startswith("https://n.local:10250/")
    with pytest.raises(ValueError, match="has no address"):
        kubelet_url(NodeEndpoint("bare", ()), settings, None)
    proxied = CollectorSettings(kubelet_via_proxy=True)
    assert (
        kubelet_url(NodeEndpoint("a b", ()), proxied, "https://api:6443/")
        == "https://api:6443/api/v1/nodes/a%20b/proxy/metrics/resource"
    )


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    subclasses: list[type] = type.__subclasses__(cls)
    for sub in subclasses:
        found |= {sub} | _all_subclasses(sub)
    return found


@pytest.mark.parametrize("error_type", sorted(_all_subclasses(httpx.HTTPError), key=str))
def test_every_httpx_error_maps_to_a_known_reason(error_type: Callable[..., BaseException]) -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")
    if error_type is httpx.HTTPStatusError:
        response = httpx.Response(418, request=request)
        error: BaseException = httpx.HTTPStatusError("teapot", request=request, response=response)
    else:
        try:
            error = error_type("boom", request=request)
        except TypeError:
            error = error_type("boom")
    reason, _ = classify(error)
    assert reason in REASONS


def test_numpy_and_math_agree_on_stale_markers() -> None:
    assert not stale_mask(np.array([math.nan])).any()


def _aiohttp_error(error_type: type[BaseException]) -> BaseException:
    url = yarl.URL("http://127.0.0.1/")
    key = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    refused = OSError(111, "refused")
    if issubclass(error_type, aiohttp.ClientResponseError):
        info = aiohttp.RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
        return error_type(info, (), status=502, message="bad gateway")
    if issubclass(error_type, aiohttp.client_exceptions.UnixClientConnectorError):
        return error_type("/run/kubelet.sock", key, refused)
    if issubclass(error_type, aiohttp.ClientConnectorError):
        cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
        return error_type(key, cause if issubclass(error_type, aiohttp.ClientSSLError) else refused)
    if issubclass(error_type, aiohttp.ServerFingerprintMismatch):
        return error_type(b"a", b"b", "127.0.0.1", 1)
    if issubclass(error_type, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return error_type(url)
    return error_type("boom")


@pytest.mark.parametrize(
    "error_type",
    sorted(_all_subclasses(aiohttp.ClientError) | {aiohttp.ClientError}, key=str),
)
def test_every_aiohttp_error_maps_to_an_httpx_error_and_a_known_reason(
    error_type: type[BaseException],
) -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")
    mapped = map_aiohttp_error(_aiohttp_error(error_type), request)
    assert isinstance(mapped, httpx.TransportError)
    reason, _ = classify(mapped)
    assert reason in REASONS and reason != "http_error"
