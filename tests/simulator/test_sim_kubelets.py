"""Kubelet endpoints: the real text format, the API proxy path, tokens and faults."""

from __future__ import annotations

import urllib.request
from urllib.error import HTTPError

import pytest

from runtime.clock import VirtualClock
from simulator.background import BackgroundCluster
from simulator.faults import FaultSpec
from simulator.scenario import Scenario
from tests.support.external import require_data


def _get(url: str, token: str | None = None, timeout: float = 5) -> tuple[int, str, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def _code(url: str, token: str | None = None) -> int:
    """The HTTP status of a GET, closing error responses (they hold a socket)."""
    try:
        return _get(url, token)[0]
    except HTTPError as e:
        e.close()
        return e.code


def _families(text: str) -> dict[str, str]:
    """Metric family name -> TYPE, from an exposition text."""
    return {
        line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE")
    }


def test_metrics_resource_matches_the_kubelet_format(sim: BackgroundCluster) -> None:
    sim.advance(60)
    assert sim.cluster is not None
    status, content_type, text = _get(sim.cluster.kubelet_url("node-1") + "/metrics/resource")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    real = require_data("k8s/metrics_resource_metrics-server_decode_test.prom").read_text()
    ours, theirs = _families(text), _families(real)
    # Every family of the real kubelet output is served with the same type (scrape_error was
    # renamed resource_scrape_error in later kubelets).
    theirs["resource_scrape_error"] = theirs.pop("scrape_error")
    assert {k: ours.get(k) for k in theirs} == theirs
    container_lines = [
        line for line in text.splitlines() if line.startswith("container_cpu_usage_seconds_total{")
    ]
    assert container_lines
    labels, value, stamp = container_lines[0].rsplit(" ", 2)
    assert labels.startswith('container_cpu_usage_seconds_total{container="app",namespace="shop"')
    assert float(value) > 0 and len(stamp) == 13


def test_counters_grow_with_load_and_proxy_serves_the_same(sim: BackgroundCluster) -> None:
    assert sim.cluster is not None
    sim.advance(60)
    proxy = sim.api_url + "/api/v1/nodes/node-1/proxy/metrics/resource"

    def node_cpu(text: str) -> float:
        line = next(x for x in text.splitlines() if x.startswith("node_cpu_usage_seconds_total"))
        return float(line.split()[1])

    first = node_cpu(_get(proxy)[2])
    sim.advance(60)
    second = node_cpu(_get(proxy)[2])
    # One core of demand over two pods on two nodes: about half a core per node.
    assert 0.3 * 60 < second - first < 0.8 * 60
    assert _get(sim.api_url + "/api/v1/nodes/node-1/proxy/stats/summary")[2].startswith("{")
    assert _code(sim.api_url + "/api/v1/nodes/ghost/proxy/metrics/resource") == 404


def test_kubelet_token_is_checked(small_scenario: Scenario) -> None:
    clock = VirtualClock(start=1_740_000_000.0, speed=None, autoadvance=False)
    with BackgroundCluster(small_scenario, clock, kubelet_token="s3cret", token="api") as bg:
        assert bg.cluster is not None
        url = bg.cluster.kubelet_url("node-1") + "/metrics/resource"
        assert _code(url) == 401
        assert _code(url, "s3cret") == 200
        assert _code(bg.api_url + "/api/v1/nodes") == 401
        assert _code(bg.api_url + "/api/v1/nodes", "api") == 200


def test_kubelet_faults_garbage_error_and_timeout(sim: BackgroundCluster) -> None:

    assert sim.cluster is not None
    cluster = sim.cluster
    url = cluster.kubelet_url("node-2") + "/metrics/resource"
    sim.call(
        lambda: cluster.inject(FaultSpec(type="kubelet-garbage", nodes=("node-2",), duration=60))
    )
    assert "garbage" in _get(url)[2]
    assert "garbage" not in _get(cluster.kubelet_url("node-1") + "/metrics/resource")[2]
    sim.advance(60)
    assert "garbage" not in _get(url)[2]
    sim.call(lambda: cluster.inject(FaultSpec(type="kubelet-error", code=503, at=60)))
    assert _code(url) == 503
    sim.call(cluster.faults.clear)
    sim.call(lambda: cluster.inject(FaultSpec(type="kubelet-timeout")))
    with pytest.raises(TimeoutError):
        _get(url, timeout=0.3)
