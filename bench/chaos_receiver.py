"""The webhook receiver of the chaos run: it records what it accepted, and fails on demand.

Modes: ``ok``; ``down`` (the port is closed: connections are refused); ``5xx`` (503);
``429`` (with ``Retry-After``); ``timeout`` (the request is held longer than the sender
waits, then dropped). Only a request answered 2xx counts as received, as a real receiver
would have processed only those; its ``Idempotency-Key`` and alerts are kept.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

__all__ = ["Arrival", "ChaosReceiver", "Mode"]

Mode = Literal["ok", "down", "5xx", "429", "timeout"]


@dataclass(frozen=True)
class Arrival:
    """One accepted notification: its key, when (virtual seconds), and its alerts."""

    key: str
    at: float
    status: str
    alerts: tuple[tuple[str, str, str, str], ...]  # (alertname, status, startsAt, fingerprint)


class ChaosReceiver:
    """An aiohttp webhook receiver on loopback."""

    def __init__(self, now: Any, hold_seconds: float, retry_after: float) -> None:
        self._now = now
        self.hold_seconds = hold_seconds
        self.retry_after = retry_after
        self.mode: Mode = "ok"
        self.arrivals: list[Arrival] = []
        self.refused: dict[str, int] = {"down": 0, "5xx": 0, "429": 0, "timeout": 0}
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        mode = self.mode
        if mode == "down":
            # A connection kept alive from before the port closed: it breaks, as in a crash.
            self.refused["down"] += 1
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)
        if mode == "5xx":
            self.refused["5xx"] += 1
            return web.Response(status=503, text="unavailable\n")
        if mode == "429":
            self.refused["429"] += 1
            return web.Response(
                status=429, text="slow down\n", headers={"Retry-After": f"{self.retry_after:g}"}
            )
        if mode == "timeout":
            self.refused["timeout"] += 1
            # Longer than the sender's timeout: it gives up first, and nothing was processed.
            await asyncio.sleep(self.hold_seconds)
            return web.Response(status=503, text="too late\n")
        payload = json.loads(body)
        alerts = tuple(
            (a["labels"].get("alertname", ""), a["status"], a["startsAt"], a["fingerprint"])
            for a in payload.get("alerts", [])
        )
        key = request.headers.get("Idempotency-Key", "")
        self.arrivals.append(Arrival(key, self._now(), payload.get("status", ""), alerts))
        return web.Response(text="ok\n")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        server: Any = self._site._server
        self.port = int(server.sockets[0].getsockname()[1])

    async def set_mode(self, mode: Mode) -> None:
        """Switch modes; ``down`` closes the port, leaving it reopens the same port."""
        if mode == self.mode:
            return
        if mode == "down" and self._site is not None:
            await self._site.stop()
            self._site = None
        elif self.mode == "down":
            await self._listen()
        self.mode = mode

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
