"""Any ``Authorization`` header, and any token in it, is answered 401, 403 or the call: never
a 500, and the answer never repeats the token."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from access import CacheTtl, Permission, api_app, build_guard, guarded
from runtime.clock import VirtualClock
from tests.access.conftest import TOKENS

VALID = {"admin-token-0123456789": 200, "view-token-0123456789": 403}


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    async def create(_: web.Request) -> web.Response:
        return web.json_response({"silenceID": "x"})

    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp) / "tokens.csv"
        tokens.write_text(TOKENS)
        clock = VirtualClock(start=0.0, autoadvance=False)
        guard = build_guard("token-file", clock, CacheTtl(), tokens)
        app = api_app(guard, guarded([web.post("/api/v2/silences", create)], "silences"))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
        await runner.cleanup()
        await clock.aclose()


# What HTTP lets through in a header value: visible Latin-1 and spaces, no CR/LF.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=80,
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.one_of(header_text, header_text.map(lambda t: "Bearer " + t)))
@example("Bearer admin-token-0123456789")
@example("bearer   view-token-0123456789  ")
@example("Bearer")
@example("Bearer admin-token-0123456789 extra")
async def test_any_authorization_header(base_url: str, header: str) -> None:
    # What a server can receive: a value without surrounding blanks (RFC 9110 5.5).
    header = header.strip(" \t")
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post(
            "/api/v2/silences", headers={"Authorization": header.encode("latin-1")}
        )
    scheme, _, token = header.partition(" ")
    token = token.strip(" \t")
    expected = VALID.get(token, 401) if scheme.lower() == "bearer" else 401
    assert answer.status_code == expected, (header, answer.text)
    if answer.status_code == 401:
        assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="foresight"')
    if len(token) > 3:
        assert token not in answer.text


def test_a_permission_names_a_resource_or_a_path() -> None:
    with pytest.raises(ValueError, match="a resource or a path"):
        Permission("get")
    with pytest.raises(ValueError, match="a resource or a path"):
        Permission("get", "silences", "/metrics")
