"""The kubelets' HTTP endpoints: one port per node on 127.0.0.1, one aiohttp app for all.

``/metrics/resource``, ``/metrics/cadvisor``, ``/stats/summary`` and ``/healthz``. The same
handler answers the API server's node proxy. A bearer token is checked when configured, and
kubelet faults (errors, garbage, hangs, slowness) are applied here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable

from aiohttp import web

from runtime.clock import Clock
from simulator.faults import FaultInjector
from simulator.kubelet_metrics import render_cadvisor, render_resource_metrics, stats_summary
from simulator.runtime import NodeRuntime

__all__ = ["KubeletServer"]

log = logging.getLogger("simulator.kubelet")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
_GARBAGE = (
    '# HELP container_cpu_usage_seconds_total\ncontainer_cpu_usage_seconds_total{pod="x"'
    " not-a-number\n\x00\x01garbage{{{\n"
)


class KubeletServer:
    """Serves every node's kubelet endpoints; ``start`` opens one port per node."""

    def __init__(
        self,
        nodes: Callable[[], dict[str, NodeRuntime]],
        last_step: Callable[[], float],
        clock: Clock,
        faults: FaultInjector,
        token: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self._nodes = nodes
        self._last_step = last_step
        self._clock = clock
        self._faults = faults
        self._token = token
        self._host = host
        self._by_port: dict[int, str] = {}
        # Rendered bodies per (node, path), valid while the simulation step and the node's
        # pods are unchanged: the real kubelet also serves stats from a periodic cache.
        self._cache: dict[tuple[str, str], tuple[tuple[float, int], str]] = {}
        self._runner: web.AppRunner | None = None
        self._hang = asyncio.Event()
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._app = app

    async def start(self, port_base: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        """Listen for every node (ports from ``port_base`` up, or any free ones if 0), over
        HTTPS when ``ssl_context`` is given."""
        self._runner = web.AppRunner(
            self._app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        for i, node in enumerate(self._nodes().values()):
            site = web.TCPSite(
                self._runner,
                self._host,
                port_base + i if port_base else 0,
                reuse_address=True,
                ssl_context=ssl_context,
            )
            await site.start()
            server = site._server
            assert isinstance(server, asyncio.base_events.Server)
            node.port = server.sockets[0].getsockname()[1]
            self._by_port[node.port] = node.name

    async def stop(self) -> None:
        self._hang.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        node = self._by_port.get(sock[1]) if sock else None
        if node is None:
            return web.Response(status=404, text="unknown node\n")
        if self._token is not None and request.headers.get("Authorization") != (
            f"Bearer {self._token}"
        ):
            return web.Response(status=401, text="Unauthorized\n")
        path = request.path.lstrip("/")
        return await self.serve(node, path)

    async def serve(self, node_name: str, path: str) -> web.Response:
        """The response of ``node_name``'s kubelet to ``GET /path``."""
        node = self._nodes().get(node_name)
        if node is None:
            return web.Response(status=404, text=f"node {node_name} not found\n")
        now = self._clock.now()
        if not node.ready:
            # An unreachable node's kubelet does not answer at all.
            await self._hang.wait()
            return web.Response(status=503, text="node is down\n")
        action = self._faults.kubelet_action(node_name, now, path)
        if action is not None:
            if action.kind == "timeout":
                await self._hang.wait()
                return web.Response(status=503, text="shutting down\n")
            if action.kind == "slow":
                await asyncio.sleep(action.delay)
            elif action.kind == "garbage":
                return web.Response(text=_GARBAGE, headers={"Content-Type": PROMETHEUS_TEXT})
            elif action.kind == "error":
                return web.Response(status=action.code, text="injected fault\n")
        last = self._last_step()
        if path == "metrics/resource":
            return web.Response(
                text=render_resource_metrics(node, now, last),
                headers={"Content-Type": PROMETHEUS_TEXT},
            )
        if path == "metrics/cadvisor":
            return web.Response(
                text=render_cadvisor(node, now, last), headers={"Content-Type": PROMETHEUS_TEXT}
            )
        if path == "stats/summary":
            return web.Response(
                text=json.dumps(stats_summary(node, now, last)), content_type="application/json"
            )
        if path in ("healthz", ""):
            return web.Response(text="ok")
        return web.Response(status=404, text="404 page not found\n")
