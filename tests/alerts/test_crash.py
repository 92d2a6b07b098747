"""kill -9 of a notifier process mid-delivery and mid-queueing, a restart, and an exact
account of every notification: none lost; a duplicate only of a request in flight at the
kill, with the same idempotency key."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

CHILD = Path(__file__).with_name("crash_child.py")
REPO = Path(__file__).resolve().parents[2]
N = 60


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[tuple[str, str]] = []  # (idempotency key, n)
        self.stall_at = 0
        self.stalled = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        (n,) = {a["labels"]["n"] for a in body["alerts"]}
        self.arrivals.append((request.headers["Idempotency-Key"], n))
        if len(self.arrivals) == self.stall_at:
            self.stalled.set()
            await asyncio.sleep(3600)  # in flight when the sender dies
        return web.Response()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield rec, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def _child(state: Path, url: str, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(state),
        url,
        str(N),
        *extra,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _account(arrivals: list[tuple[str, str]], in_flight_max: int) -> None:
    keys_by_n: dict[str, set[str]] = defaultdict(set)
    for key, n in arrivals:
        keys_by_n[n].add(key)
    assert set(keys_by_n) == {str(i) for i in range(N)}, "a notification was lost"
    assert all(len(k) == 1 for k in keys_by_n.values()), "a notification was queued twice"
    duplicates = len(arrivals) - N
    assert 0 <= duplicates <= in_flight_max


@pytest.mark.parametrize("kill_at", [1, 17, 45])
async def test_kill_mid_delivery(
    receiver: tuple[Receiver, str], tmp_path: Path, kill_at: int
) -> None:
    rec, url = receiver
    rec.stall_at = kill_at
    first = await _child(tmp_path, url)
    await asyncio.wait_for(rec.stalled.wait(), 30)
    first.send_signal(signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL
    assert first.stdout is not None
    assert (await first.stdout.read()).decode().strip() == f"queued {N}"
    second = await _child(tmp_path, url)
    out, _ = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 0
    assert out.decode().strip() == "queued 0"  # the notification log came back with the outbox
    _account(rec.arrivals, in_flight_max=16)


@pytest.mark.parametrize("kill_after", [1, 30, N])
async def test_kill_while_queueing(
    receiver: tuple[Receiver, str], tmp_path: Path, kill_after: int
) -> None:
    rec, url = receiver
    first = await _child(tmp_path, url, str(kill_after))
    assert await asyncio.wait_for(first.wait(), 30) == -signal.SIGKILL
    second = await _child(tmp_path, url)
    out, _ = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 0
    assert out.decode().strip() == f"queued {N - kill_after}"
    _account(rec.arrivals, in_flight_max=0)
