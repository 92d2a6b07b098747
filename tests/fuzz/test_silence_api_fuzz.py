"""Fuzzing ``POST /api/v2/silences`` over a real local server: any body is answered 200 or
400, never 500, and the silences created stay listable."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alerts import api
from alerts.notify.silences import Silences

NOW_MS = 1_700_000_000_000
TIMES = ["2023-11-14T22:13:20Z", "2030-01-01T00:00:00.123456789+02:00", "2023-11-14", "now"]
# Times whose UTC falls outside years 1 to 9999, which the API could not print back.
TIMES += ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "", "1e999"]
times = st.sampled_from(TIMES) | st.text(max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
matchers = st.fixed_dictionaries(
    {"name": st.sampled_from(["alertname", "", "a b"]) | st.text(max_size=5)},
    optional={
        "value": st.sampled_from(["x", ".*", "(", "a+", ""]) | json_values,
        "isRegex": st.booleans() | json_values,
        "isEqual": st.booleans() | json_values,
    },
)
silences = st.fixed_dictionaries(
    {},
    optional={
        "matchers": st.lists(matchers | json_values, max_size=3) | json_values,
        "startsAt": times | json_values,
        "endsAt": times | json_values,
        "createdBy": st.text(max_size=5) | json_values,
        "comment": st.text(max_size=5) | json_values,
        "id": st.sampled_from(["", "nope"]) | json_values,
    },
)


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        app = web.Application()
        app.add_routes(api.routes(list, Silences(Path(tmp), 3_600_000), lambda: NOW_MS))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
        await runner.cleanup()


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.one_of(silences.map(json.dumps), json_values.map(json.dumps), st.binary(max_size=40)))
@example(b"\xff\xfe{")  # not UTF-8
@example(b'{"a": ' * 3000)
@example(
    json.dumps(
        {
            "matchers": [{"name": "a", "value": "b", "isRegex": False}],
            "startsAt": "0001-01-01T00:00:00+14:00",
            "endsAt": "9999-12-31T23:59:59-12:00",
            "createdBy": "x",
            "comment": "y",
        }
    )
)
async def test_post_silence_answers_200_or_400(base_url: str, body: Any) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post("/api/v2/silences", content=body)
        assert answer.status_code in (200, 400), (answer.status_code, answer.text)
        listed = await http.get("/api/v2/silences")
        assert listed.status_code == 200, listed.text
