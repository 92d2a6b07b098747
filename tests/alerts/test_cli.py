"""``foresight silence`` against the silences API, and ``foresight alerts outbox``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from alerts import api
from alerts.notify.outbox import Outbox
from alerts.notify.silences import Silences
from autoscaler.cli.main import main
from runtime.clock import RealClock


async def test_silence_add_list_expire(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    silences = Silences(tmp_path, 3_600_000)
    app = web.Application()
    app.add_routes(api.routes(list, silences, lambda: round(RealClock().now() * 1000)))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    async def cli(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, ["silence", "--url", url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await cli(
        "add", "alertname=Watchdog", 'severity=~"info|none"', "-c", "noisy", "-a", "bob", "-d", "2h"
    )
    assert code == 0
    sid = out.strip()
    (s,) = silences.query(0)
    assert (
        s.id == sid and s.created_by == "bob" and abs(s.ends_at - s.starts_at - 7_200_000) < 60_000
    )
    assert [str(m) for m in s.matchers] == ['alertname="Watchdog"', 'severity=~"info|none"']
    code, out, _ = await cli("list")
    assert sid in out and 'severity=~"info|none"' in out and "noisy" in out
    assert (await cli("list", "-q", "alertname=Other"))[1] == ""
    assert (await cli("expire", sid))[0] == 0
    assert (await cli("list", "-q"))[1] == ""
    assert (await cli("list", "-q", "--expired"))[1].strip() == sid
    code, _, err = await cli("add", 'a=~".*"', "-c", "x")
    assert code == 1 and "at least one matcher must not match the empty string" in err
    code, _, err = await cli("add", 'a="', "-c", "x")
    assert code == 1 and "invalid matcher" in err
    await runner.cleanup()


def test_alerts_outbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Outbox(tmp_path)
    queued = box.enqueue("hook/webhook/0", b"{}", 1_767_225_600_000, '{}:{alertname="A"}')
    dead = box.enqueue("hook/webhook/0", b"{}", 1_767_225_600_000)
    box.finish(dead.id, "dead", "ConnectError: refused")
    monkeypatch.setenv("FORESIGHT_RULES__STATE_DIR", str(tmp_path))
    assert main(["alerts", "outbox"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "1 queued, 1 dead-lettered"
    assert queued.id in out and "ConnectError: refused" in out
    assert main(["alerts", "outbox", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["state"], r["id"]) for r in rows] == [("queued", queued.id), ("dead", dead.id)]
    box.close()
