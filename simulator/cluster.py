"""The simulated cluster: API server, kubelets and controllers on one event loop.

``SimulatedCluster`` builds everything a scenario describes, serves the API and the kubelet
endpoints on 127.0.0.1, and advances the simulation every ``tick`` seconds of its clock
(``run_loop=True``) or when a test calls ``advance`` (``run_loop=False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from pathlib import Path
from typing import Any

from aiohttp import web

from runtime.clock import Clock, VirtualClock
from simulator.api_core import ApiCore
from simulator.api_http import ApiServerApp
from simulator.app_metrics import AppMetricsServer
from simulator.context import Kinds, StepContext, Writer
from simulator.controllers import reconcile_all
from simulator.errors import ApiError
from simulator.faults import FaultInjector, FaultSpec
from simulator.kubeconfig import kubeconfig, write_kubeconfig
from simulator.kubelet_http import KubeletServer
from simulator.kubelet_sim import Kubelets
from simulator.metrics_api import metrics_objects
from simulator.nodes import evict_pods, node_object, set_node_ready
from simulator.objects import KubeObject, parse_time
from simulator.resources import ResourceType, TypeRegistry
from simulator.runtime import NodeRuntime
from simulator.scenario import Scenario
from simulator.scheduler import schedule_pending
from simulator.store import ObjectStore
from simulator.tls import ServingCertificate
from simulator.workloads import behaviours_of, workload_object

__all__ = ["SimulatedCluster"]

log = logging.getLogger("simulator")

EVENT_TTL = 3600.0
# A step never integrates more than this at once, so a stall does not turn into one jump.
MAX_STEP = 300.0


class SimulatedCluster:
    """A whole cluster from a scenario, served on loopback."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Clock,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        kubelet_token: str | None = None,
        history_limit: int = 20_000,
        tls: ServingCertificate | None = None,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.host = host
        self.port = port
        self.token = token
        self.tls = tls
        self.start_time = clock.now()
        self.rng = random.Random(scenario.seed)
        self.store = ObjectStore(history_limit)
        self.registry = TypeRegistry()
        self.core = ApiCore(self.store, self.registry, clock, random.Random(scenario.seed + 1))
        self.kinds = Kinds.of(self.core)
        self.writer = Writer(self.core, self.kinds)
        self.faults = FaultInjector(self.start_time, random.Random(scenario.seed + 2))
        self._timeline: list[FaultSpec] = []
        self._fired: set[int] = set()
        self.kubelets = Kubelets(behaviours_of(scenario, self.start_time), self.start_time)
        self.apps = AppMetricsServer(
            self.kubelets,
            {(w.namespace, w.name): w.metrics for w in scenario.workloads if w.metrics},
        )
        self.kubelets.assign_ip = self.apps.assign_ip
        self.kubelet_server = KubeletServer(
            lambda: self.kubelets.nodes,
            lambda: self.kubelets.last_step,
            clock,
            self.faults,
            kubelet_token,
            host,
        )
        self.api = ApiServerApp(self.core, clock, self.faults, token, self._proxy, self.inject)
        self.core.metrics_provider = self._metrics
        self.core.serve_pod_resize(scenario.pod_resize)
        self._runner: web.AppRunner | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._last_step = self.start_time
        self._last_prune = self.start_time
        for fault in scenario.faults:
            self.inject(fault)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, run_loop: bool = True) -> None:
        """Build the scenario's objects, open the ports, and (optionally) start ticking."""
        index = 0
        for group in self.scenario.nodes:
            for name in group.names():
                self.kubelets.nodes[name] = NodeRuntime(
                    name=name,
                    cpu=group.cpu,
                    memory=group.memory,
                    start_time=self.start_time,
                    index=index,
                )
                index += 1
        ssl_context = self.tls.server_context() if self.tls is not None else None
        await self.apps.start()
        await self.kubelet_server.start(self.scenario.kubelet_port_base, ssl_context)
        self._bootstrap()
        # A client's idle keep-alive connection must not hold a stop for aiohttp's default 60 s.
        self._runner = web.AppRunner(
            self.api.app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.host, self.port, reuse_address=True, ssl_context=ssl_context
        )
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]
        self.api.address = f"{self.host}:{self.port}"
        self.step()
        if run_loop:
            self._loop_task = asyncio.get_running_loop().create_task(
                self._run(), name="simulator-ticks"
            )
        log.info(
            "simulated cluster %r serving on %s (%d nodes)",
            self.scenario.name,
            self.api_url,
            len(self.kubelets.nodes),
        )

    async def stop(self) -> None:
        """Close watches and ports and stop ticking."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        self.store.close_watches()
        self.api.stop_hanging()
        await self.kubelet_server.stop()
        await self.apps.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimulatedCluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        while True:
            await self.clock.sleep(self.scenario.tick)
            try:
                self.step()
            except Exception:
                log.exception("simulation step failed")

    # -- addresses -------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def api_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def kubeconfig(self) -> dict[str, Any]:
        ca = self.tls.ca_pem if self.tls is not None else None
        return kubeconfig(self.api_url, self.token, ca_pem=ca)

    def write_kubeconfig(self, path: Path) -> None:
        write_kubeconfig(path, self.kubeconfig())

    def kubelet_url(self, node: str) -> str:
        return f"{self.scheme}://{self.host}:{self.kubelets.nodes[node].port}"

    # -- building --------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        core = self.core
        for ns in self.scenario.all_namespaces():
            core.create(self.kinds.namespace, "", {"metadata": {"name": ns}})
        for group in self.scenario.nodes:
            for name in group.names():
                runtime = self.kubelets.nodes[name]
                core.create(self.kinds.node, "", node_object(group, name, runtime, self.start_time))
        for w in self.scenario.workloads:
            obj = workload_object(w)
            rt = self.registry.by_kind(obj["apiVersion"], obj["kind"])
            assert rt is not None
            core.create(rt, w.namespace, obj)

    def create(self, obj: KubeObject) -> KubeObject:
        """Create an object as a client would (a CRD starts serving its resource)."""
        rt = self.registry.by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if rt is None:
            raise ApiError.invalid(
                str(obj.get("kind", "")),
                "",
                str(obj.get("metadata", {}).get("name", "")),
                [("kind", f"Unsupported value: {obj.get('apiVersion')} {obj.get('kind')}")],
            )
        namespace = str(obj.get("metadata", {}).get("namespace", "")) if rt.namespaced else ""
        created: KubeObject = self.core.create(rt, namespace, obj).obj
        return created

    # -- simulation ------------------------------------------------------------------------

    def step(self) -> None:
        """Advance the simulation to the clock's current time."""
        now = self.clock.now()
        dt = min(MAX_STEP, max(0.0, now - self._last_step))
        ctx = StepContext(now, self.writer, self.kinds, self.rng)
        self._apply_timeline(ctx)
        self._evict(ctx)
        reconcile_all(ctx)
        schedule_pending(ctx)
        self.kubelets.sync(ctx)
        reconcile_all(ctx, rounds=2)
        self.kubelets.step_usage(ctx, dt)
        self.apps.step(now, dt)
        if now - self._last_prune >= 60:
            self._prune_events(now)
            self._last_prune = now
        self._last_step = now

    async def advance(self, seconds: float) -> None:
        """Move a VirtualClock forward by ``seconds``, stepping every tick on the way."""
        if not isinstance(self.clock, VirtualClock):
            raise TypeError("advance() needs a VirtualClock")
        remaining = seconds
        while remaining > 1e-9:
            delta = min(self.scenario.tick, remaining)
            self.clock.advance(delta)
            remaining -= delta
            self.step()
            await asyncio.sleep(0)

    @property
    def pod_resize(self) -> bool:
        """Whether the API server serves ``pods/resize`` (the scenario's ``podResize``)."""
        return self.core.pod_resize

    @pod_resize.setter
    def pod_resize(self, enabled: bool) -> None:
        self.core.serve_pod_resize(enabled)

    def inject(self, fault: FaultSpec) -> None:
        """Add a fault (its ``at`` is counted from the simulation start)."""
        if fault.type in ("node-down", "watch-disconnect"):
            if (
                fault.type == "node-down"
                and fault.node not in self.kubelets.nodes
                and (fault.node not in self.scenario.node_names())
            ):
                raise ApiError.invalid(
                    "Fault",
                    "",
                    fault.type,
                    [("node", f"Invalid value: {fault.node!r}: no such node")],
                )
            self._timeline.append(fault)
        else:
            self.faults.add(fault)

    def _apply_timeline(self, ctx: StepContext) -> None:
        for i, fault in enumerate(self._timeline):
            begin = self.start_time + fault.at
            if fault.type == "watch-disconnect":
                if i not in self._fired and ctx.now >= begin:
                    self._fired.add(i)
                    ended = self.store.close_watches()
                    log.info("fault: closed %d watches", ended)
                continue
            node_name = fault.node or ""
            runtime = self.kubelets.nodes.get(node_name)
            node = self.store.get(self.kinds.node.storage_key, "", node_name)
            if runtime is None or node is None:
                continue
            should_be_down = fault.active(self.start_time, ctx.now)
            if should_be_down and runtime.ready:
                log.info("fault: node %s goes down", node_name)
                set_node_ready(ctx, node.obj, runtime, False)
            elif (
                not should_be_down and not runtime.ready and ctx.now >= begin and (i in self._fired)
            ):
                log.info("fault: node %s comes back", node_name)
                set_node_ready(ctx, node.obj, runtime, True)
            if should_be_down:
                self._fired.add(i)

    def _evict(self, ctx: StepContext) -> None:
        for runtime in self.kubelets.nodes.values():
            if runtime.down_since is not None and (
                ctx.now - runtime.down_since >= self.scenario.eviction_seconds
            ):
                evict_pods(ctx, runtime.name)
                runtime.pods.clear()

    def _prune_events(self, now: float) -> None:
        for stored in list(self.store.items(self.kinds.event.storage_key)):
            ev = stored.obj
            stamp = ev.get("lastTimestamp") or ev["metadata"].get("creationTimestamp")
            if stamp and now - parse_time(stamp) > EVENT_TTL:
                self.writer.delete(
                    self.kinds.event, ev["metadata"]["namespace"], ev["metadata"]["name"]
                )

    # -- served on request -----------------------------------------------------------------

    async def _proxy(self, node: str, path: str, query: str) -> web.Response:
        return await self.kubelet_server.serve(node, path)

    def _metrics(self, rt: ResourceType, namespace: str, name: str | None) -> list[KubeObject]:
        return metrics_objects(rt, self.kubelets.nodes, namespace, name, self.clock.now())
