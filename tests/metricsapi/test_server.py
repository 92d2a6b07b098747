"""The external metrics API over real TLS on loopback: front-proxy certificates, bearer
tokens, authorisation, and the Kubernetes shapes of answers and errors.

The reviewers are in-memory fakes of the two :mod:`access` protocols (TokenReview and
SubjectAccessReview need an API server; the end-to-end test uses the simulator's).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from access import CacheTtl, Decision, Permission, User
from autoscaler.metricsapi.auth import AggregatedGuard, RequestHeader, serving_tls
from autoscaler.metricsapi.documents import ForecastView
from autoscaler.metricsapi.server import ExternalMetricsApi
from runtime.clock import VirtualClock
from simulator.front_proxy import FRONT_PROXY_CN, FrontProxy, client_certificate, new_front_proxy
from simulator.tls import LOOPBACK_HOSTS, CertificateAuthority, ServingCertificate, new_ca

BASE = "/apis/external.metrics.k8s.io/v1beta1"
NOW = 1_767_600_000.0
HPA_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"


class Tokens:
    """TokenReview of a fixed table."""

    def __init__(self, users: dict[str, User]) -> None:
        self.users = users

    async def authenticate(self, token: str) -> User | None:
        return self.users.get(token)


@dataclass
class Rights:
    """SubjectAccessReview granting ``allowed`` (user name, permission) pairs; records asks."""

    allowed: set[tuple[str, str]]
    asked: list[tuple[User, Permission]] = field(default_factory=list)

    async def authorize(self, user: User, permission: Permission) -> Decision:
        self.asked.append((user, permission))
        return Decision((user.name, str(permission)) in self.allowed, "test rights")


VIEWS = [
    ForecastView("shop", "web", "Deployment", "web", "Recommend", 0.99, 2.5, 1.25, 10),
    ForecastView("shop", "api", "Deployment", "api", "Recommend", 0.9, 0.25, 0.1, 1),
    ForecastView("shop", "auto", "Deployment", "auto", "Auto", 0.9, 9.0, 1.0, 9),
    ForecastView("shop", "cold", "Deployment", "cold", "Recommend", None, None, None, None),
    ForecastView("ops", "job", "StatefulSet", "job", "Recommend", 0.99, 4.0, 2.0, 4),
]


@dataclass
class Served:
    url: str
    ca: bytes
    proxy: FrontProxy
    rights: Rights

    def context(self, client: FrontProxy | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca.decode())
        if client is not None:
            client.load_into(context)
        return context

    async def get(
        self,
        path: str,
        *,
        client: FrontProxy | None = None,
        headers: dict[str, str] | None = None,
        method: str = "GET",
    ) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.url + path, ssl=self.context(client), headers=headers or {}
            ) as response,
        ):
            return response.status, await response.json(content_type=None)


@pytest.fixture(scope="module")
def serving() -> ServingCertificate:
    return new_ca().issue(LOOPBACK_HOSTS)


@pytest.fixture(scope="module")
def front_proxy_ca() -> CertificateAuthority:
    return new_ca("front-proxy-ca")


@pytest.fixture(scope="module")
def front_proxy(front_proxy_ca: CertificateAuthority) -> FrontProxy:
    return client_certificate(front_proxy_ca, FRONT_PROXY_CN)


@pytest.fixture
async def served(
    tmp_path: Path, serving: ServingCertificate, front_proxy: FrontProxy
) -> AsyncIterator[Served]:
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    (tmp_path / "front-proxy-ca.crt").write_bytes(front_proxy.ca_pem)
    tls = serving_tls(tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "front-proxy-ca.crt")
    clock = VirtualClock(start=NOW, autoadvance=False)
    rights = Rights({(HPA_USER, "list foresight_autoscaler_forecast.external.metrics.k8s.io")})
    tokens = Tokens({"hpa-token": User(HPA_USER), "nobody-token": User("nobody")})
    guard = AggregatedGuard(
        tokens,
        rights,
        clock,
        CacheTtl(0, 0),
        request_header=RequestHeader(allowed_names=frozenset({front_proxy.common_name})),
    )
    api = ExternalMetricsApi(guard, clock, lambda: VIEWS, lambda: NOW - 30, tls)
    runner = web.AppRunner(api.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Served(f"https://127.0.0.1:{port}", serving.ca_pem, front_proxy, rights)
    finally:
        await runner.cleanup()
        await clock.aclose()


def as_hpa(served: Served) -> dict[str, Any]:
    return {"client": served.proxy, "headers": {"X-Remote-User": HPA_USER}}


async def test_the_front_proxy_reads_the_forecast_peak_of_recommend_autoscalers(
    served: Served,
) -> None:
    code, body = await served.get(
        f"{BASE}/namespaces/shop/foresight_autoscaler_forecast", **as_hpa(served)
    )
    assert code == 200, body
    assert body["kind"] == "ExternalMetricValueList"
    assert body["apiVersion"] == "external.metrics.k8s.io/v1beta1"
    # Auto is foresight's own to scale; "cold" has no forecast yet; "ops" is another namespace.
    assert [(i["metricLabels"]["autoscaler"], i["value"]) for i in body["items"]] == [
        ("api", "250m"),
        ("web", "2500m"),
    ]
    web_item = body["items"][1]
    assert web_item["metricName"] == "foresight_autoscaler_forecast"
    assert web_item["metricLabels"] == {
        "namespace": "shop",
        "autoscaler": "web",
        "workload": "web",
        "workload_kind": "Deployment",
        "quantile": "0.99",
    }
    assert web_item["timestamp"] == "2026-01-05T07:59:30Z"
    user, permission = served.rights.asked[-1]
    assert user.name == HPA_USER
    assert str(permission) == "list foresight_autoscaler_forecast.external.metrics.k8s.io"


async def test_label_selectors_pick_items_and_a_malformed_one_is_400(served: Served) -> None:
    path = f"{BASE}/namespaces/shop/foresight_autoscaler_forecast?labelSelector="
    for selector, expected in [
        ("workload%3Dweb", ["web"]),
        ("workload%20in%20(web,api),quantile!%3D0.99", ["api"]),
        ("!workload", []),
    ]:
        code, body = await served.get(path + selector, **as_hpa(served))
        assert code == 200
        assert [i["metricLabels"]["autoscaler"] for i in body["items"]] == expected
    code, body = await served.get(path + "workload%3D%3D%3Dweb", **as_hpa(served))
    assert code == 400
    assert body["kind"] == "Status" and body["reason"] == "BadRequest"
    assert "workload===web" in body["message"]


async def test_front_proxy_headers_without_its_certificate_are_ignored(
    served: Served, front_proxy_ca: CertificateAuthority
) -> None:
    # Anyone can send the header; only the front proxy's certificate makes it believed.
    code, body = await served.get(
        f"{BASE}/namespaces/shop/foresight_autoscaler_forecast", headers={"X-Remote-User": HPA_USER}
    )
    assert code == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    # A certificate of the right CA with a common name that is not allowed: refused too.
    other = client_certificate(front_proxy_ca, "someone-else")
    code, body = await served.get(
        f"{BASE}/namespaces/shop/foresight_autoscaler_forecast",
        client=other,
        headers={"X-Remote-User": HPA_USER},
    )
    assert code == 401
    assert "someone-else" in body["message"]


async def test_a_certificate_of_another_ca_fails_the_handshake(served: Served) -> None:
    stranger = new_front_proxy()
    with pytest.raises(aiohttp.ClientError):
        await served.get(f"{BASE}/namespaces/shop/foresight_autoscaler_forecast", client=stranger)


async def test_bearer_tokens_are_reviewed_and_rights_checked(served: Served) -> None:
    path = f"{BASE}/namespaces/shop/foresight_autoscaler_forecast"
    code, body = await served.get(path, headers={"Authorization": "Bearer hpa-token"})
    assert code == 200 and len(body["items"]) == 2
    code, body = await served.get(path, headers={"Authorization": "Bearer wrong"})
    assert code == 401 and body["reason"] == "Unauthorized"
    code, body = await served.get(path, headers={"Authorization": "Bearer nobody-token"})
    assert code == 403
    assert body["reason"] == "Forbidden"
    assert body["message"].startswith(
        'User "nobody" cannot list resource "foresight_autoscaler_forecast" in API group '
        '"external.metrics.k8s.io"'
    )


async def test_unknown_metric_404_discovery_and_methods(served: Served) -> None:
    served.rights.allowed.add((HPA_USER, "list nope.external.metrics.k8s.io"))
    code, body = await served.get(f"{BASE}/namespaces/shop/nope", **as_hpa(served))
    assert code == 404
    assert body["reason"] == "NotFound"
    assert "foresight_autoscaler_forecast" in body["message"]
    code, body = await served.get(BASE, **as_hpa(served))
    assert code == 200
    assert body["kind"] == "APIResourceList"
    assert body["groupVersion"] == "external.metrics.k8s.io/v1beta1"
    assert {r["name"] for r in body["resources"]} == {
        "foresight_autoscaler_forecast",
        "foresight_autoscaler_desired_replicas",
        "foresight_autoscaler_load",
    }
    assert all(r["kind"] == "ExternalMetricValueList" for r in body["resources"])
    code, body = await served.get("/apis/external.metrics.k8s.io", **as_hpa(served))
    assert code == 200 and body["preferredVersion"]["version"] == "v1beta1"
    code, body = await served.get(BASE)
    assert code == 401  # discovery needs an authenticated caller
    code, body = await served.get(f"{BASE}/namespaces/shop/x/y", **as_hpa(served))
    assert code == 404 and body["kind"] == "Status"
    code, body = await served.get(BASE, method="POST", **as_hpa(served))
    assert code == 405 and body["reason"] == "MethodNotAllowed"
    async with (
        aiohttp.ClientSession() as session,
        session.get(served.url + "/healthz", ssl=served.context()) as response,
    ):
        assert response.status == 200


async def test_desired_replicas_and_load_are_published_too(served: Served) -> None:
    served.rights.allowed |= {
        (HPA_USER, "list foresight_autoscaler_desired_replicas.external.metrics.k8s.io"),
        (HPA_USER, "list foresight_autoscaler_load.external.metrics.k8s.io"),
    }
    code, body = await served.get(
        f"{BASE}/namespaces/ops/foresight_autoscaler_desired_replicas", **as_hpa(served)
    )
    assert code == 200 and [i["value"] for i in body["items"]] == ["4"]
    code, body = await served.get(
        f"{BASE}/namespaces/shop/foresight_autoscaler_load", **as_hpa(served)
    )
    assert [i["value"] for i in body["items"]] == ["100m", "1250m"]
