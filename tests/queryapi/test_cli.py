"""``foresight promql query --url``: the same outputs from a running foresight or Prometheus as
from a data directory, with the bearer token of ``--token-file``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from autoscaler.cli.main import main
from tests.queryapi.conftest import AT_S, END_S, START_S, ServeApi

TOKEN = "s3cret-token"


@web.middleware
async def _bearer_only(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return web.json_response({"status": "error", "error": "no"}, status=401)
    return await handler(request)


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["promql", "query", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_query_a_running_foresight_with_a_token(
    serve_api: ServeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = serve_api(middlewares=[_bearer_only])
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    args = ["--url", url, "--token-file", str(token), "sum by (job) (mem)", "--time", str(AT_S)]
    code, out, _ = _cli([*args, "--output", "json"], capsys)
    assert code == 0
    direct = httpx.get(
        f"{url}/api/v1/query",
        params={"query": "sum by (job) (mem)", "time": AT_S},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    assert json.loads(out) == direct
    code, out, _ = _cli(args, capsys)
    lines = out.splitlines()
    assert lines[0].split() == ["SERIES", "TIME", "VALUE"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ['{job="api"}', f"{AT_S:.3f}"],
        ['{job="db"}', f"{AT_S:.3f}"],
    ]
    code, _, err = _cli(["--url", url, "mem"], capsys)
    assert code == 1 and "401" in err and "--token-file" in err and TOKEN not in err


def test_range_query_and_errors_from_the_server(
    serve_api: ServeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    url = serve_api()
    window = ["--start", str(START_S), "--end", str(END_S), "--step", "600"]
    code, out, err = _cli(["--url", url, "rate(mem[5m])", *window], capsys)
    assert code == 0
    assert len(out.splitlines()) == 1 + 6 * 4  # six series, four steps
    assert "might not be a counter" in err  # the server's infos on stderr
    code, _, err = _cli(["--url", url, "sum(", "--time", str(AT_S)], capsys)
    assert code == 1 and "400 bad_data" in err


def test_the_same_command_against_prometheus(
    both: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs = both
    args = ["count by (job) (mem)", "--time", str(AT_S)]
    assert _cli(["--url", ours, *args], capsys) == _cli(["--url", theirs, *args], capsys)
