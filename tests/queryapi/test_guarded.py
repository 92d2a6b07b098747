"""The query API mounted as the service mounts it: behind the API port's guard, every route
needing ``get`` on ``queries.foresight.dev`` (POST included: a form-encoded query only reads).
With a token file, a viewer queries, a token without rights gets 403, no token 401."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from aiohttp import web

from access import ApiRoute, CacheTtl, Permission, api_app, build_guard
from queryapi import QueryApi
from runtime.clock import VirtualClock
from tests.queryapi.conftest import AT_S, ServeApi


def _guarded_app(token_file: Path) -> Callable[[QueryApi], web.Application]:
    guard = build_guard("token-file", VirtualClock(0.0), CacheTtl(10, 5), token_file)

    def make(api: QueryApi) -> web.Application:
        assert set(api.verbs.values()) == {"get"}
        return api_app(guard, [ApiRoute(r, Permission("get", "queries")) for r in api.routes()])

    return make


def test_queries_behind_the_guard(serve_api: ServeApi, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('viewer-token,grafana,,"foresight:view"\nbare-token,somebody,,\n')
    url = serve_api(make_app=_guarded_app(tokens))
    form = {"query": "count(mem)", "time": str(AT_S)}

    def post(token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(f"{url}/api/v1/query", data=form, headers=headers)

    assert post("viewer-token").json()["data"]["result"][0]["value"][1] == "6"
    assert post("bare-token").status_code == 403
    assert post(None).status_code == 401
    labels = httpx.get(
        f"{url}/api/v1/label/job/values", headers={"Authorization": "Bearer viewer-token"}
    )
    assert labels.json()["data"] == ["api", "db"]
