"""The API port with ``server.auth: token-file``: 401 without a valid token, 403 without the
right, the call itself with it; the metrics port and the API port serve only their own."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web

from access import with_verbs
from autoscaler.settings import SettingsError, load_settings
from tests.access.conftest import SILENCE, TOKENS, bearer, serve

ADMIN = bearer("admin-token-0123456789")
VIEW = bearer("view-token-0123456789")
NOBODY = bearer("nobody-token-0123456789")


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.csv"
    path.write_text(TOKENS)
    return path


async def test_writes_without_a_valid_token_are_401(tmp_path: Path, token_file: Path) -> None:
    async with serve(tmp_path, auth="token-file", token_file=token_file) as s:
        created = await s.http.post("/api/v2/silences", json=SILENCE)
        assert created.status_code == 401
        assert created.headers["WWW-Authenticate"] == 'Bearer realm="foresight"'
        assert (
            created.json()["error"] == "a bearer token is required (Authorization: Bearer <token>)"
        )
        deleted = await s.http.delete("/api/v2/silence/some-id")
        assert deleted.status_code == 401
        wrong = await s.http.post("/api/v2/silences", json=SILENCE, headers=bearer("guess"))
        assert wrong.status_code == 401
        assert (
            wrong.headers["WWW-Authenticate"] == 'Bearer realm="foresight", error="invalid_token"'
        )
        basic = await s.http.post(
            "/api/v2/silences", json=SILENCE, headers={"Authorization": "Basic YWxpY2U6eA=="}
        )
        assert basic.status_code == 401
        listed = await s.http.get("/api/v2/silences", headers=ADMIN)
        assert listed.json() == []


async def test_a_token_without_the_right_is_403_naming_it(tmp_path: Path, token_file: Path) -> None:
    async with serve(tmp_path, auth="token-file", token_file=token_file) as s:
        created = await s.http.post("/api/v2/silences", json=SILENCE, headers=VIEW)
        assert created.status_code == 403
        assert created.json()["error"].startswith(
            'forbidden: User "bob" cannot create resource "silences" in API group "foresight.dev"'
        )
        deleted = await s.http.delete("/api/v2/silence/x", headers=VIEW)
        assert deleted.status_code == 403 and "cannot delete resource" in deleted.json()["error"]
        rules = await s.http.get("/api/v1/rules", headers=NOBODY)
        assert rules.status_code == 403
        assert 'User "carol" cannot list resource "rules"' in rules.json()["error"]
        assert (await s.http.get("/api/v2/silences", headers=ADMIN)).json() == []


async def test_the_right_token_creates_lists_and_expires(tmp_path: Path, token_file: Path) -> None:
    async with serve(tmp_path, auth="token-file", token_file=token_file) as s:
        created = await s.http.post("/api/v2/silences", json=SILENCE, headers=ADMIN)
        assert created.status_code == 200
        sid = created.json()["silenceID"]
        listed = await s.http.get("/api/v2/silences", headers=VIEW)
        assert [x["id"] for x in listed.json()] == [sid]
        assert (await s.http.get(f"/api/v2/silence/{sid}", headers=VIEW)).status_code == 200
        assert (await s.http.get("/api/v1/rules", headers=VIEW)).json()["status"] == "success"
        assert (await s.http.get("/api/v1/alerts", headers=VIEW)).status_code == 200
        assert (await s.http.delete(f"/api/v2/silence/{sid}", headers=ADMIN)).status_code == 200
        one = await s.http.get(f"/api/v2/silence/{sid}", headers=VIEW)
        assert one.json()["status"]["state"] == "expired"


async def test_each_port_serves_only_its_own(tmp_path: Path, token_file: Path) -> None:
    async with serve(tmp_path, auth="token-file", token_file=token_file) as s:
        for path in ("/api/v2/silences", "/api/v1/rules", "/api/v1/alerts"):
            assert (await s.metrics.get(path, headers=ADMIN)).status_code == 404
        assert (
            await s.metrics.post("/api/v2/silences", json=SILENCE, headers=ADMIN)
        ).status_code == 404
        for path in ("/metrics", "/healthz", "/readyz"):
            assert (await s.http.get(path, headers=ADMIN)).status_code == 404
        assert (await s.metrics.get("/metrics")).status_code == 200
        assert (await s.metrics.get("/healthz")).text == "ok\n"
        assert s.service.port != s.service.api_port


async def test_metrics_can_require_a_token(tmp_path: Path, token_file: Path) -> None:
    async with serve(tmp_path, auth="token-file", token_file=token_file, protect_metrics=True) as s:
        assert (await s.metrics.get("/metrics")).status_code == 401
        assert (await s.metrics.get("/metrics", headers=NOBODY)).status_code == 403
        assert (await s.metrics.get("/metrics", headers=VIEW)).status_code == 200
        # Probes carry no token.
        assert (await s.metrics.get("/healthz")).status_code == 200


async def test_routes_another_package_adds_sit_behind_the_same_guard(
    tmp_path: Path, token_file: Path
) -> None:
    async def example(_: web.Request) -> web.Response:
        return web.json_response({"status": "success"})

    # Routes another part offers, and the verb of each (this POST only reads).
    routes = [web.get("/api/v1/example", example), web.post("/api/v1/example", example)]
    verbs = {("GET", "/api/v1/example"): "get", ("POST", "/api/v1/example"): "get"}
    extra = with_verbs(routes, verbs, "example")
    async with serve(tmp_path, extra, auth="token-file", token_file=token_file) as s:
        assert (await s.http.post("/api/v1/example")).status_code == 401
        refused = await s.http.get("/api/v1/example", headers=NOBODY)
        assert 'cannot get resource "example"' in refused.json()["error"]
        assert (await s.http.post("/api/v1/example", headers=VIEW)).status_code == 200
        assert (await s.metrics.get("/api/v1/example", headers=VIEW)).status_code == 404
        with pytest.raises(RuntimeError, match=r"add API routes before serve_http"):
            s.service.add_api_routes(extra)


async def test_every_api_route_has_its_permission(tmp_path: Path, token_file: Path) -> None:
    async with serve(tmp_path, auth="token-file", token_file=token_file) as s:
        table = {(a.route.method, a.route.path): str(a.permission) for a in s.service.api_routes()}
    queries = {
        k: v
        for k, v in table.items()
        if k[1].startswith("/api/v1/") and v.endswith(" queries.foresight.dev")
    }
    # Prometheus' query API only reads, whatever the method.
    assert ("POST", "/api/v1/query_range") in queries
    assert set(queries.values()) == {"get queries.foresight.dev"}
    assert {k: v for k, v in table.items() if k not in queries} == {
        ("GET", "/api/v1/alerts"): "list alerts.foresight.dev",
        ("GET", "/api/v1/rules"): "list rules.foresight.dev",
        ("GET", "/api/v2/silences"): "list silences.foresight.dev",
        ("POST", "/api/v2/silences"): "create silences.foresight.dev",
        ("GET", "/api/v2/silence/{id}"): "get silences.foresight.dev",
        ("DELETE", "/api/v2/silence/{id}"): "delete silences.foresight.dev",
    }


async def test_none_lets_anyone_in_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        async with serve(tmp_path, auth="none") as s:
            assert (await s.http.post("/api/v2/silences", json=SILENCE)).status_code == 200
    assert any(
        r.levelno == logging.WARNING and "server.auth is none: anyone" in r.getMessage()
        for r in caplog.records
    )


def test_token_file_mode_needs_the_file() -> None:
    with pytest.raises(SettingsError, match=r"auth token-file needs server.token_file"):
        load_settings(overrides={"server": {"auth": "token-file"}})
    with pytest.raises(SettingsError, match=r"api_port and port must differ \(both 9000\)"):
        load_settings(overrides={"server": {"port": 9000, "api_port": 9000}})


def test_defaults_listen_on_loopback_with_kubernetes_auth() -> None:
    server = load_settings().server
    assert (server.host, server.port, server.api_port, server.auth) == (
        "127.0.0.1",
        8080,
        8081,
        "kubernetes",
    )
    assert not server.protect_metrics
    assert (server.auth_cache_seconds, server.auth_deny_cache_seconds) == (10, 10)
    assert server.tls_cert_file is None


async def test_the_service_answers_prometheus_queries_on_its_api_port(
    tmp_path: Path, token_file: Path
) -> None:
    async with serve(tmp_path, auth="token-file", token_file=token_file) as s:
        form = {"query": "vector(2) * 3", "time": "1700000000"}
        assert (await s.http.post("/api/v1/query", data=form)).status_code == 401
        answer = await s.http.post("/api/v1/query", data=form, headers=VIEW)
        assert answer.status_code == 200
        assert answer.json()["data"]["result"] == [{"metric": {}, "value": [1700000000, "6"]}]
        # Grafana's probe, and the settings with every credential masked.
        build = await s.http.get("/api/v1/status/buildinfo", headers=VIEW)
        assert build.json()["status"] == "success"
        config = (await s.http.get("/api/v1/status/config", headers=VIEW)).json()["data"]
        assert "token_file" in config["yaml"]
        assert "view-token" not in config["yaml"]
        assert (await s.metrics.get("/api/v1/query", params=form)).status_code == 404
