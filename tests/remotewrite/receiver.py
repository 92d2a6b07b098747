"""A loopback front of a real Prometheus' remote-write receiver that fails on purpose.

Every request is decoded (:func:`remotewrite.prompb.decode_request`) and recorded with its
headers and the clock's time; then it is answered from the script (``plan``: a status and
headers, not forwarded), or forwarded to Prometheus, whose answer is returned (once ``gate``
is set). With
``stall_at`` the request of that number is forwarded and then never answered: the receiver
stored it, the sender never hears so. :meth:`stop` and :meth:`start` take the receiver off
and back on the same port (connection refused in between).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
from aiohttp import web

from remotewrite.prompb import decode_request
from runtime.clock import Clock
from tsdb.labels import Labels


@dataclass
class Seen:
    at: float
    headers: dict[str, str]
    body: bytes
    samples: list[tuple[Labels, int, float]]
    status: int = 0


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    def __init__(self, upstream: str, clock: Clock) -> None:
        self.upstream = upstream
        self.clock = clock
        self.plan: list[Reply] = []
        self.seen: list[Seen] = []
        self.stall_at = 0
        self.stalled = asyncio.Event()
        # Cleared: a request that arrives waits for it before it is forwarded.
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = asyncio.Event()
        self._forever = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=30)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/write"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        samples = [
            (labels, int(t), float(v))
            for labels, ts, values in decode_request(body)
            for t, v in zip(ts.tolist(), values.tolist(), strict=True)
        ]
        seen = Seen(self.clock.now(), dict(request.headers), body, samples)
        self.seen.append(seen)
        number = len(self.seen)  # now: requests of other shards arrive while this one waits
        if self.plan:
            reply = self.plan.pop(0)
            seen.status = reply.status
            return web.Response(status=reply.status, headers=reply.headers, text="scripted")
        if not self.gate.is_set():
            self.waiting.set()
            await self.gate.wait()
        forwarded = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "transfer-encoding")
        }
        answer = await self._client.post(
            f"{self.upstream}/api/v1/write", content=body, headers=forwarded
        )
        seen.status = answer.status_code
        if number == self.stall_at:
            self.stalled.set()
            await self._forever.wait()
        return web.Response(status=answer.status_code, text=answer.text)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/api/v1/write", self.handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def aclose(self) -> None:
        await self.stop()
        await self._client.aclose()
