"""Applications' own metrics: pods that expose a request counter, served on loopback.

A scenario workload with ``metrics`` (:class:`AppMetricsSpec`) gets pods annotated
``prometheus.io/scrape: "true"`` with ``prometheus.io/port`` and ``prometheus.io/path``, and a
container port of that number. Each such pod serves ``http_requests_total{method, code}`` at
``http://{pod IP}:{port}{path}``, as an instrumented application would.

The pod network is on loopback: every simulated pod gets an IP in 127.0.0.0/8
(``127.{base + node // 256}.{node % 256}.{n}``, ``base`` drawn per cluster so that clusters
running side by side rarely share addresses) and a pod that serves metrics listens on its own
IP at the annotated port. An address someone else already listens on is skipped: the pod gets
the next one. Nothing is reachable beyond the machine.

The request rate follows the workload's load: ``requestsPerCore`` requests per second for each
core of demand, shared evenly by the ready pods (pods that are not ready get no traffic), split
by the method shares and ``errorRatio``. Counters are integrated every simulation step and
start again at 0 when the container restarts (an OOM kill), as a real process's counters do.
A pod on a node that is down does not answer (the scrape times out).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from simulator.kubelet_sim import Kubelets
    from simulator.objects import KubeObject
    from simulator.runtime import NodeRuntime, PodRuntime

__all__ = ["AppMetricsServer", "AppMetricsSpec", "scrape_annotations"]

log = logging.getLogger("simulator.apps")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
REQUESTS = "http_requests_total"


class AppMetricsSpec(BaseModel):
    """What a workload's pods expose: a request counter whose rate follows the load."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    port: int = Field(8080, ge=1, le=65535, description="container port serving the metrics")
    path: str = Field("/metrics", pattern=r"^/", description="HTTP path of the metrics")
    requests_per_core: float = Field(
        100.0, gt=0, alias="requestsPerCore", description="requests/s per core of load"
    )
    methods: dict[str, float] = Field(
        default_factory=lambda: {"GET": 0.8, "POST": 0.2},
        description="share of the requests per method",
    )
    error_ratio: float = Field(0.0, ge=0, le=1, alias="errorRatio", description="share of 500s")

    @field_validator("methods")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        if not value or any(v < 0 for v in value.values()) or sum(value.values()) <= 0:
            raise ValueError("give at least one method with a positive share")
        return value

    def split(self, requests: float) -> dict[tuple[str, str], float]:
        """``requests`` shared out by (method, code)."""
        total = sum(self.methods.values())
        out: dict[tuple[str, str], float] = {}
        for method, share in self.methods.items():
            n = requests * share / total
            out[(method, "200")] = n * (1 - self.error_ratio)
            if self.error_ratio:
                out[(method, "500")] = n * self.error_ratio
        return out


def scrape_annotations(spec: AppMetricsSpec) -> dict[str, str]:
    """The pod annotations of the common ``kubernetes-pods`` scrape convention."""
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(spec.port),
        "prometheus.io/path": spec.path,
    }


@dataclass
class _Endpoint:
    """One pod's listening socket and counters."""

    uid: str
    node: str
    workload: tuple[str, str]
    spec: AppMetricsSpec
    sock: socket.socket
    server: asyncio.AbstractServer | None = None
    container_id: str = ""
    counts: dict[tuple[str, str], float] = field(default_factory=dict)

    def reset(self, container_id: str) -> None:
        self.container_id = container_id
        self.counts = dict.fromkeys(self.spec.split(0.0), 0.0)


class AppMetricsServer:
    """Assigns pod IPs on loopback and serves the metrics of pods that expose some."""

    # Addresses tried on one node before a pod is given one nobody listens on.
    ATTEMPTS = 254

    def __init__(
        self,
        kubelets: Kubelets,
        specs: dict[tuple[str, str], AppMetricsSpec],
        rng: random.Random | None = None,
    ) -> None:
        self._kubelets = kubelets
        self._specs = specs
        self.base = (rng or random.Random()).randrange(16, 200)
        self._endpoints: dict[str, _Endpoint] = {}  # by pod uid
        self._by_address: dict[tuple[str, int], str] = {}
        self._server: web.Server | None = None
        self._starting: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()

    async def start(self) -> None:
        """Ready to serve (pods start listening as the kubelets start them)."""
        self._server = web.Server(self._handle, access_log=None)

    async def stop(self) -> None:
        """Close every pod's socket; answer nothing more."""
        self._closed.set()
        for task in list(self._starting):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        for uid in list(self._endpoints):
            self._close(uid)
        if self._server is not None:
            await self._server.shutdown(1.0)
            self._server = None

    # -- addresses -------------------------------------------------------------------------

    def assign_ip(self, node: NodeRuntime, pod: KubeObject) -> str:
        """The IP of a pod the kubelet starts; a pod that serves metrics listens on it."""
        workload, _ = self._kubelets.behaviour_of(pod)
        spec = self._specs.get(workload) if workload is not None else None
        if spec is None or workload is None:
            return self._ip(node)
        for attempt in range(self.ATTEMPTS):
            if attempt:
                node.next_ip += 1
            ip = self._ip(node)
            sock = _listen(ip, spec.port)
            if sock is not None:
                break
        else:
            log.warning("no free address for %s on node %s", _name(pod), node.name)
            return ip
        uid = pod["metadata"]["uid"]
        endpoint = _Endpoint(uid, node.name, workload, spec, sock)
        self._endpoints[uid] = endpoint
        self._by_address[(ip, spec.port)] = uid
        task = asyncio.get_running_loop().create_task(self._serve(endpoint), name=f"pod-{uid}")
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)
        return ip

    def _ip(self, node: NodeRuntime) -> str:
        n = node.next_ip % 254 + 1
        return f"127.{self.base + node.index // 256}.{node.index % 256}.{n}"

    async def _serve(self, endpoint: _Endpoint) -> None:
        assert self._server is not None
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(self._server, sock=endpoint.sock)
        except (OSError, ValueError):
            return  # the pod went away before it listened (its socket is closed)
        if self._endpoints.get(endpoint.uid) is not endpoint:
            server.close()
            return
        endpoint.server = server

    def _close(self, uid: str) -> None:
        endpoint = self._endpoints.pop(uid)
        self._by_address = {k: v for k, v in self._by_address.items() if v != uid}
        if endpoint.server is not None:
            endpoint.server.close()
        else:
            endpoint.sock.close()

    # -- counters --------------------------------------------------------------------------

    def step(self, now: float, dt: float) -> None:
        """Count the requests of the last ``dt`` seconds; close the sockets of gone pods."""
        running: dict[str, PodRuntime] = {}
        ready: dict[tuple[str, str], int] = {}
        for node in self._kubelets.nodes.values():
            for p in node.pods.values():
                if p.uid in self._endpoints and not p.done:
                    running[p.uid] = p
                    if p.ready and node.ready and p.workload is not None:
                        ready[p.workload] = ready.get(p.workload, 0) + 1
        for uid in [u for u in self._endpoints if u not in running]:
            self._close(uid)
        t = now - self._kubelets.start
        for uid, p in running.items():
            endpoint = self._endpoints[uid]
            self._fresh(endpoint, p)
            count = ready.get(endpoint.workload, 0)
            node = self._kubelets.nodes[p.node]
            if not (p.ready and node.ready and count):
                continue
            load = self._kubelets.behaviours[endpoint.workload].load
            demand = load.demand(t) if load is not None else 0.0
            rate = endpoint.spec.requests_per_core * demand / count
            for key, n in endpoint.spec.split(rate * dt).items():
                endpoint.counts[key] += n

    @staticmethod
    def _fresh(endpoint: _Endpoint, p: PodRuntime) -> None:
        """Counters from 0 when the serving container (the first) has restarted."""
        container_id = p.containers[0].container_id if p.containers else ""
        if container_id != endpoint.container_id:
            endpoint.reset(container_id)

    def render(self, uid: str) -> str:
        """The exposition text of one pod."""
        endpoint = self._endpoints[uid]
        lines = [
            f"# HELP {REQUESTS} Requests served, by method and status code.",
            f"# TYPE {REQUESTS} counter",
        ]
        for (method, code), value in sorted(endpoint.counts.items()):
            lines.append(f'{REQUESTS}{{method="{method}",code="{code}"}} {value:.17g}')
        return "\n".join(lines) + "\n"

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        uid = self._by_address.get((sock[0], sock[1])) if sock else None
        endpoint = self._endpoints.get(uid) if uid is not None else None
        if endpoint is None:
            return web.Response(status=503, text="not serving\n")
        node = self._kubelets.nodes.get(endpoint.node)
        if node is None or not node.ready:
            # The pod network of a node that is down does not answer at all.
            await self._closed.wait()
            return web.Response(status=503, text="node is down\n")
        if request.method != "GET" or request.path != endpoint.spec.path:
            return web.Response(status=404, text="404 page not found\n")
        for p in node.pods.values():
            if p.uid == endpoint.uid:
                self._fresh(endpoint, p)
        body = self.render(endpoint.uid)
        return web.Response(text=body, headers={"Content-Type": PROMETHEUS_TEXT})


def _listen(ip: str, port: int) -> socket.socket | None:
    """A listening socket on ``ip:port``, or None if that address is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((ip, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
            return None
        raise
    sock.setblocking(False)
    return sock


def _name(pod: KubeObject) -> str:
    meta = pod["metadata"]
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
