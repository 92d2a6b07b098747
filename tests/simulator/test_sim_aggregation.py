"""The simulator's API aggregation and HPA controller against a stand-in aggregated server.

The stand-in is a real HTTPS server on loopback that asks for client certificates and answers
an ``ExternalMetricValueList`` with a value the test sets, recording what it was sent: the
front proxy's certificate and headers, or the caller's token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from runtime.clock import VirtualClock
from simulator.cluster import SimulatedCluster
from simulator.front_proxy import FRONT_PROXY_CN, FrontProxy, client_certificate
from simulator.hpa import propose
from simulator.scenario import parse_scenario
from simulator.tls import CertificateAuthority, ServingCertificate, new_ca
from tests.simulator.conftest import SMALL
from tests.simulator.test_sim_kubectl import _kubectl_result
from tests.support.external import require_binary

START = 1_740_000_000.0
GROUP_PATH = "/apis/external.metrics.k8s.io/v1beta1"


@pytest.mark.parametrize(
    ("total", "target", "average", "current", "expected"),
    [
        (2.0, 0.25, True, 8, 8),  # exactly on target
        (2.15, 0.25, True, 8, 8),  # 7.5 % above: within the tolerance, kept
        (2.3, 0.25, True, 8, 10),  # 15 % above: ceil(2.3 / 0.25)
        (1.0, 0.25, True, 8, 4),  # below: down to ceil(1.0 / 0.25)
        (150.0, 100.0, False, 4, 6),  # Value target: ceil(1.5 * 4)
        (105.0, 100.0, False, 4, 4),  # within the tolerance
    ],
)
def test_the_upstream_replica_arithmetic(
    total: float, target: float, average: bool, current: int, expected: int
) -> None:
    assert propose(total, target, average, current) == expected


@dataclass
class Backend:
    """The stand-in aggregated server."""

    value: str = "1"
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        cn = next(
            (v for rdn in (peer or {}).get("subject", ()) for k, v in rdn if k == "commonName"),
            None,
        )
        self.seen.append(
            {
                "path": request.path_qs,
                "cn": cn,
                "user": request.headers.get("X-Remote-User"),
                "groups": request.headers.getall("X-Remote-Group", []),
                "authorization": request.headers.get("Authorization"),
            }
        )
        if request.path == GROUP_PATH:
            return web.json_response({"kind": "APIResourceList", "groupVersion": "x"})
        items = [{"metricName": "m", "metricLabels": {}, "timestamp": "x", "value": self.value}]
        return web.json_response({"kind": "ExternalMetricValueList", "items": items})


@dataclass
class Rig:
    cluster: SimulatedCluster
    clock: VirtualClock
    backend: Backend
    port: int
    serving: ServingCertificate
    session: aiohttp.ClientSession

    async def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.get(self.cluster.api_url + path, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    def register(self, ca: bytes | None = None, endpoints: bool = True) -> None:
        self.cluster.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "metrics", "namespace": "shop"},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": "https"}]},
            }
        )
        if endpoints:
            self.cluster.create(
                {
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {"name": "metrics", "namespace": "shop"},
                    "subsets": [
                        {
                            "addresses": [{"ip": "127.0.0.1"}],
                            "ports": [{"name": "https", "port": self.port}],
                        }
                    ],
                }
            )
        self.cluster.create(
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
                "spec": {
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                    "service": {"namespace": "shop", "name": "metrics", "port": 443},
                    "caBundle": base64.b64encode(ca or self.serving.ca_pem).decode(),
                },
            }
        )


@pytest.fixture(scope="module")
def proxy_ca() -> CertificateAuthority:
    return new_ca("front-proxy-ca")


@pytest.fixture(scope="module")
def serving() -> ServingCertificate:
    return new_ca().issue(("metrics.shop.svc",))


@asynccontextmanager
async def open_rig(
    serving: ServingCertificate,
    proxy: FrontProxy | None,
    token: str | None,
    sync_seconds: float | None = None,
) -> AsyncIterator[Rig]:
    backend = Backend()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", backend.handle)
    context = serving.server_context()
    if proxy is not None:
        context.load_verify_locations(cadata=proxy.ca_pem.decode())
        context.verify_mode = ssl.CERT_OPTIONAL
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    clock = VirtualClock(start=START, autoadvance=False)
    cluster = SimulatedCluster(parse_scenario(SMALL, "small.yaml"), clock, token=token)
    cluster.api.aggregator.front_proxy = proxy
    cluster.api.hpa.sync_seconds = sync_seconds  # None: the test calls sync_once
    await cluster.start(run_loop=False)
    async with aiohttp.ClientSession() as session:
        try:
            yield Rig(cluster, clock, backend, port, serving, session)
        finally:
            await cluster.stop()
            await runner.cleanup()
            await clock.aclose()


@pytest.fixture
async def rig(serving: ServingCertificate, proxy_ca: CertificateAuthority) -> AsyncIterator[Rig]:
    async with open_rig(serving, client_certificate(proxy_ca, FRONT_PROXY_CN), None) as opened:
        yield opened


async def test_requests_are_proxied_with_the_front_proxy_certificate_and_headers(
    rig: Rig,
) -> None:
    rig.register()
    code, body = await rig.get(f"{GROUP_PATH}/namespaces/shop/m?labelSelector=a%3Db")
    assert code == 200 and body["kind"] == "ExternalMetricValueList"
    (seen,) = rig.backend.seen
    assert (
        seen["path"]
        == "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/m?labelSelector=a%3Db"
    )
    assert seen["cn"] == FRONT_PROXY_CN
    assert seen["user"] == "kubernetes-admin"
    assert seen["groups"] == ["system:masters", "system:authenticated"]
    assert seen["authorization"] is None
    code, groups = await rig.get("/apis")
    assert "external.metrics.k8s.io" in [g["name"] for g in groups["groups"]]
    code, group = await rig.get("/apis/external.metrics.k8s.io")
    assert (
        code == 200
        and group["preferredVersion"]["groupVersion"] == "external.metrics.k8s.io/v1beta1"
    )
    # The published front-proxy settings, as kube-apiserver writes them.
    code, cm = await rig.get(
        "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
    )
    assert json.loads(cm["data"]["requestheader-allowed-names"]) == [FRONT_PROXY_CN]


async def test_a_wrong_ca_bundle_or_missing_endpoints_are_503(rig: Rig) -> None:
    rig.register(ca=new_ca().cert_pem)
    code, body = await rig.get(f"{GROUP_PATH}/namespaces/shop/m")
    assert code == 503
    assert body["reason"] == "ServiceUnavailable"
    assert "error trying to reach service" in body["message"]
    assert "CERTIFICATE_VERIFY_FAILED" in body["message"]
    assert rig.backend.seen == []


async def test_no_endpoints_is_503_and_the_apiservice_is_not_available(
    rig: Rig, tmp_path: Path
) -> None:
    rig.register(endpoints=False)
    code, body = await rig.get(f"{GROUP_PATH}/namespaces/shop/m")
    assert code == 503 and 'no endpoints available for service "metrics"' in body["message"]
    await rig.cluster.api.aggregator.check_availability(rig.clock.now())
    code, api_service = await rig.get(
        "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.external.metrics.k8s.io"
    )
    (condition,) = api_service["status"]["conditions"]
    assert (condition["type"], condition["status"]) == ("Available", "False")
    assert condition["reason"] == "FailedDiscoveryCheck"


async def test_without_a_front_proxy_the_callers_token_is_forwarded(
    serving: ServingCertificate,
) -> None:
    async with open_rig(serving, None, "admin-token") as rig:
        rig.register()
        code, _ = await rig.get(f"{GROUP_PATH}/namespaces/shop/m", token="admin-token")
        assert code == 200
        (seen,) = rig.backend.seen
        assert seen["authorization"] == "Bearer admin-token"
        assert seen["user"] is None and seen["cn"] is None
        code, _ = await rig.get(f"{GROUP_PATH}/namespaces/shop/m", token="wrong")
        assert code == 401  # the simulator refuses it before proxying
        assert len(rig.backend.seen) == 1


def hpa(behavior: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1,
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "External",
                "external": {
                    "metric": {"name": "m", "selector": {"matchLabels": {"workload": "web"}}},
                    "target": {"type": "AverageValue", "averageValue": "500m"},
                },
            }
        ],
    }
    if behavior is not None:
        spec["behavior"] = behavior
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": spec,
    }


async def replicas(rig: Rig) -> int:
    code, scale = await rig.get("/apis/apps/v1/namespaces/shop/deployments/web/scale")
    assert code == 200
    return int(scale["spec"]["replicas"])


async def test_the_hpa_scales_up_at_once_and_down_after_the_stabilisation_window(
    rig: Rig, tmp_path: Path
) -> None:
    rig.register()
    rig.cluster.create(hpa())
    hpas = rig.cluster.api.hpa
    rig.backend.value = "3"  # 3 / 500m: 6 replicas (from 2, within the +4 pods limit)
    await hpas.sync_once()
    assert await replicas(rig) == 6
    seen = rig.backend.seen[-1]
    assert seen["user"] == "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
    assert seen["path"].endswith("labelSelector=workload%3Dweb")
    rig.backend.value = "1"  # 2 replicas would do, but the last 300 s asked for 6
    for _ in range(19):  # 285 s
        await rig.cluster.advance(15)
        await hpas.sync_once()
        assert await replicas(rig) == 6
    await rig.cluster.advance(30)
    await hpas.sync_once()
    assert await replicas(rig) == 2
    # The status shows the average over the replicas the sync found (upstream's), then the new.
    await rig.cluster.advance(15)
    await hpas.sync_once()
    _, status = await rig.get("/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web")
    conditions = {c["type"]: c["status"] for c in status["status"]["conditions"]}
    assert conditions == {"AbleToScale": "True", "ScalingActive": "True", "ScalingLimited": "False"}
    assert status["status"]["currentMetrics"][0]["external"]["current"] == {"averageValue": "500m"}
    kubeconfig = tmp_path / "kubeconfig"
    rig.cluster.write_kubeconfig(kubeconfig)
    kubectl = require_binary("kubectl")
    # In a thread: the simulator answers on this test's event loop.
    result = await asyncio.to_thread(
        _kubectl_result, kubectl, kubeconfig, "get", "hpa,apiservice", "-A"
    )
    assert "500m/500m (avg)" in result.stdout, result.stderr
    assert "v1beta1.external.metrics.k8s.io" in result.stdout


async def test_the_hpa_scale_up_rate_and_bounds(rig: Rig) -> None:
    rig.register()
    rig.cluster.create(hpa({"scaleDown": {"stabilizationWindowSeconds": 0}}))
    rig.backend.value = "100"  # 200 replicas asked; +4 a period from 2, then max 10
    await rig.cluster.api.hpa.sync_once()
    assert await replicas(rig) == 6
    await rig.cluster.advance(15)
    await rig.cluster.api.hpa.sync_once()
    assert await replicas(rig) == 10
    _, status = await rig.get("/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web")
    limited = next(c for c in status["status"]["conditions"] if c["type"] == "ScalingLimited")
    assert limited["reason"] == "TooManyReplicas"
    rig.backend.value = "0"  # no stabilisation window: straight to minReplicas
    await rig.cluster.advance(15)
    await rig.cluster.api.hpa.sync_once()
    assert await replicas(rig) == 1


async def test_the_hpa_controller_runs_by_itself_every_15_s_of_the_clock(
    serving: ServingCertificate, proxy_ca: CertificateAuthority
) -> None:
    """As in ``simulator serve``: no one calls sync_once; the clock's sleepers drive it."""
    proxy = client_certificate(proxy_ca, FRONT_PROXY_CN)
    async with open_rig(serving, proxy, None, sync_seconds=15.0) as rig:
        rig.register()
        rig.cluster.create(hpa())
        rig.backend.value = "2"  # 4 replicas
        for step in range(1, 5):
            await rig.cluster.advance(10)
            # Each sync (at 15 s and 30 s) checks availability and reads the metric, over
            # HTTP on this loop: give it turns until it is done.
            due = 2 * (step * 10 // 15)
            for _ in range(1000):
                if len(rig.backend.seen) >= due:
                    break
                await asyncio.sleep(0.01)
        assert await replicas(rig) == 4
        # 40 s of the clock: two syncs, each checking availability and reading the metric.
        paths = [s["path"].partition("?")[0] for s in rig.backend.seen]
        assert paths.count(GROUP_PATH) == 2
        assert paths.count(f"{GROUP_PATH}/namespaces/shop/m") == 2
