"""Fixtures: a small simulated cluster in a background thread, and clients for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from runtime.clock import VirtualClock
from simulator.background import BackgroundCluster
from simulator.scenario import Scenario, parse_scenario
from simulator.tls import ServingCertificate, new_ca
from tests.support.external import require_binary

SMALL = """
name: small
seed: 1
tick: 10s
nodes:
  - {name: node, count: 2, cpu: "4", memory: 8Gi}
namespaces: [shop]
workloads:
  - name: web
    namespace: shop
    replicas: 2
    requests: {cpu: 250m, memory: 128Mi}
    limits: {cpu: "1", memory: 256Mi}
    startupSeconds: 20
    load: {pattern: constant, peak: 1.0, noise: 0}
    memory: {base: 64Mi, perCore: 64Mi}
"""


@pytest.fixture
def small_scenario() -> Scenario:
    return parse_scenario(SMALL, "small.yaml")


@pytest.fixture
def sim(small_scenario: Scenario) -> Iterator[BackgroundCluster]:
    clock = VirtualClock(start=1_740_000_000.0, speed=None, autoadvance=False)
    with BackgroundCluster(small_scenario, clock) as bg:
        yield bg


TLS_TOKEN = "simulator-admin-token"


@pytest.fixture(scope="session")
def serving_certificate() -> ServingCertificate:
    return new_ca().issue()


@pytest.fixture
def tls_sim(
    small_scenario: Scenario, serving_certificate: ServingCertificate
) -> Iterator[BackgroundCluster]:
    """The small cluster over HTTPS, requiring a bearer token on the API and the kubelets."""
    clock = VirtualClock(start=1_740_000_000.0, speed=None, autoadvance=False)
    with BackgroundCluster(
        small_scenario, clock, tls=serving_certificate, token=TLS_TOKEN, kubelet_token=TLS_TOKEN
    ) as bg:
        yield bg


@pytest.fixture
def tls_kubeconfig(tls_sim: BackgroundCluster, tmp_path: Path) -> Path:
    path = tmp_path / "tls.kubeconfig"
    assert tls_sim.cluster is not None
    tls_sim.cluster.write_kubeconfig(path)
    return path


def api_client(url: str, token: str | None = None) -> client.ApiClient:
    config = client.Configuration()
    config.host = url
    if token:
        config.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(config)


@pytest.fixture
def api(sim: BackgroundCluster) -> Iterator[client.ApiClient]:
    with api_client(sim.api_url) as c:
        yield c


@pytest.fixture
def kubeconfig(sim: BackgroundCluster, tmp_path: Path) -> Path:
    path = tmp_path / "sim.kubeconfig"
    assert sim.cluster is not None
    sim.cluster.write_kubeconfig(path)
    return path


@pytest.fixture
def kubectl() -> str:
    return require_binary("kubectl")
