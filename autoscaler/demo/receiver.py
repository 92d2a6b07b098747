"""A webhook receiver on loopback for the demo: it keeps what foresight sends it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

__all__ = ["WebhookReceiver"]


class WebhookReceiver:
    """Accepts Alertmanager-format webhook payloads on ``POST /alerts``."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _receive(self, request: web.Request) -> web.Response:
        self.payloads.append(await request.json())
        return web.Response(text="ok\n")

    async def start(self) -> str:
        """Listen on a free loopback port; returns the URL to configure."""
        app = web.Application()
        app.router.add_post("/alerts", self._receive)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/alerts"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every payload, in arrival order."""
        return [alert for payload in self.payloads for alert in payload.get("alerts", [])]
