"""Kubelet scrapes over HTTPS against the simulated cluster: the cluster CA and a bearer token.

A wrong CA or a certificate for another host must fail the scrape with reason ``tls``, counted
on ``/metrics``, with a message that says what was wrong, and mark the node stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collectors.kubelet import (
    KubeletCollector,
    KubeletTlsError,
    NodeEndpoint,
    kubelet_client,
    kubelet_tls,
)
from collectors.scrape import ScrapeHealth, Scraper
from collectors.settings import CollectorSettings
from collectors.state_metrics import health_families
from runtime import names
from runtime.clock import VirtualClock
from runtime.families import FamiliesCollector
from simulator.background import BackgroundCluster
from simulator.scenario import parse_scenario
from simulator.tls import CertificateAuthority, ServingCertificate, new_ca
from tsdb import Store, StoreSettings, eq, name_is, stale_mask

SCENARIO = """
name: tls
seed: 5
tick: 5s
nodes:
  - {name: node, count: 2, cpu: "4", memory: 8Gi}
namespaces: [shop]
workloads:
  - name: web
    namespace: shop
    replicas: 2
    requests: {cpu: 250m, memory: 128Mi}
    startupSeconds: 0
    load: {pattern: constant, peak: 1.0, noise: 0}
"""
START = 1_750_000_000.0
TOKEN = "kubelet-reader-token"


@pytest.fixture(scope="module")
def cluster_ca() -> CertificateAuthority:
    return new_ca("cluster-ca")


@dataclass
class Tls:
    ca: CertificateAuthority
    serving: ServingCertificate


@pytest.fixture
def tls(cluster_ca: CertificateAuthority) -> Tls:
    return Tls(cluster_ca, cluster_ca.issue())


def _cluster(serving: ServingCertificate) -> BackgroundCluster:
    clock = VirtualClock(start=START, speed=None, autoadvance=False)
    return BackgroundCluster(
        parse_scenario(SCENARIO, "tls.yaml"), clock, tls=serving, token=TOKEN, kubelet_token=TOKEN
    )


@pytest.fixture
def sim(tls: Tls) -> Iterator[BackgroundCluster]:
    with _cluster(tls.serving) as bg:
        bg.advance(30)
        yield bg


@dataclass
class Rig:
    collector: KubeletCollector
    store: Store
    health: ScrapeHealth
    nodes: list[NodeEndpoint]


Build = Callable[..., Awaitable[Rig]]


def _files(tmp_path: Path, ca_pem: bytes, token: str) -> tuple[Path, Path]:
    ca_file, token_file = tmp_path / "ca.crt", tmp_path / "token"
    ca_file.write_bytes(ca_pem)
    token_file.write_text(token + "\n")
    return ca_file, token_file


def _endpoints(bg: BackgroundCluster) -> list[NodeEndpoint]:
    assert bg.cluster is not None
    return [
        NodeEndpoint(n.name, (("InternalIP", "127.0.0.1"),), n.port)
        for n in bg.cluster.kubelets.nodes.values()
    ]


@pytest.fixture
async def build(sim: BackgroundCluster) -> AsyncIterator[Build]:
    """Makes collectors that scrape the simulated kubelets over HTTPS with given settings."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(settings: CollectorSettings, api_server: str | None = None) -> Rig:
            nodes = _endpoints(sim)
            store = Store(StoreSettings(), sim.clock, persistent=False)
            stack.callback(store.close)
            client = await stack.enter_async_context(kubelet_client(settings))
            health = ScrapeHealth("kubelet")
            scraper = Scraper(
                client,
                sim.clock,
                health,
                concurrency=4,
                timeout_s=5,
                stagger_s=0,
                max_bytes=settings.max_response_bytes,
                backoff_initial_s=1,
                backoff_max_s=1,
            )
            collector = KubeletCollector(
                scraper, store, sim.clock, settings, lambda: nodes, api_server=api_server
            )
            return Rig(collector, store, health, nodes)

        yield make


def _settings(ca_file: Path | None, token_file: Path | None, **extra: object) -> CollectorSettings:
    return CollectorSettings.model_validate(
        {
            "kubelet_scheme": "https",
            "stagger_seconds": 0,
            "ca_file": ca_file,
            "token_file": token_file,
            **extra,
        }
    )


async def test_verified_tls_with_the_token_collects(build: Build, tls: Tls, tmp_path: Path) -> None:
    rig = await build(_settings(*_files(tmp_path, tls.ca.cert_pem, TOKEN)))
    assert await rig.collector.collect() > 0
    assert rig.health.errors == {}
    assert rig.health.up == {"node-1": True, "node-2": True}
    assert len(rig.store.select([name_is(names.NODE_MEMORY)], 0, 2**62)) == 2


async def test_through_the_api_server_proxy_over_tls(
    build: Build, tls: Tls, tmp_path: Path, sim: BackgroundCluster
) -> None:
    assert sim.api_url.startswith("https://")
    settings = _settings(*_files(tmp_path, tls.ca.cert_pem, TOKEN), kubelet_via_proxy=True)
    rig = await build(settings, sim.api_url)
    await rig.collector.collect()
    assert rig.health.errors == {}
    assert set(rig.collector.latest) == {"node-1", "node-2"}


async def test_a_wrong_token_is_unauthorized(build: Build, tls: Tls, tmp_path: Path) -> None:
    rig = await build(_settings(*_files(tmp_path, tls.ca.cert_pem, "not-the-token")))
    await rig.collector.collect()
    assert rig.health.errors == {"unauthorized": 2}


def _tls_errors(health: ScrapeHealth) -> float | None:
    registry = CollectorRegistry()
    registry.register(FamiliesCollector(lambda: health_families([health], None, None)))
    return registry.get_sample_value(
        "foresight_scrape_errors_total", {"job": "kubelet", "reason": "tls"}
    )


async def test_a_certificate_of_another_ca_is_a_counted_tls_error(
    build: Build, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = new_ca("someone-else")
    rig = await build(_settings(*_files(tmp_path, stranger.cert_pem, TOKEN)))
    caplog.set_level(logging.WARNING, "collectors.scrape")
    assert await rig.collector.collect() == 0
    assert rig.health.errors == {"tls": 2}
    assert rig.health.up == {"node-1": False, "node-2": False}
    assert _tls_errors(rig.health) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert all(": tls (" in m and "certificate verify failed" in m for m in messages), messages
    assert rig.collector.latest == {}


async def test_a_certificate_for_another_host_is_a_tls_error_and_the_node_goes_stale(
    build: Build,
    tls: Tls,
    tmp_path: Path,
    sim: BackgroundCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = await build(_settings(*_files(tmp_path, tls.ca.cert_pem, TOKEN)))
    await rig.collector.collect()
    await asyncio.to_thread(sim.advance, 15)
    # The kubelets come back with a certificate the cluster CA signed for another name.
    wrong_host = tls.ca.issue(hosts=("kubelet.example.invalid",))
    caplog.set_level(logging.WARNING, "collectors.scrape")
    with _cluster(wrong_host) as other:
        rig.nodes[:] = _endpoints(other)
        await rig.collector.collect()
    assert rig.health.errors == {"tls": 2}
    assert _tls_errors(rig.health) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert all("IP address mismatch" in m for m in messages), messages
    [series] = rig.store.select([name_is(names.NODE_MEMORY), eq("node", "node-1")], 0, 2**62)
    assert stale_mask(series.values).tolist() == [False, True]


def test_a_missing_or_garbled_ca_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(KubeletTlsError, match=r"collectors\.ca_file: .*nope\.crt: no such file"):
        kubelet_tls(CollectorSettings(ca_file=tmp_path / "nope.crt"))
    garbled = tmp_path / "garbled.crt"
    garbled.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(KubeletTlsError, match="not a PEM CA bundle"):
        kubelet_tls(CollectorSettings(ca_file=garbled))
    assert kubelet_tls(CollectorSettings(insecure_skip_tls_verify=True)) is False
    assert kubelet_tls(CollectorSettings(ca_file=None)) is True
