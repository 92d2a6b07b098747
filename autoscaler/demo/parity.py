"""One trace through the live service and through the backtest, on the same demand.

The live side is the whole service on a virtual clock, as ``foresight run`` would run it: a
simulated cluster with one Deployment whose CPU demand is the trace, the collectors scraping
its kubelets, the store, the controller reading the load with PromQL, forecasting and scaling
through the Kubernetes API, and pods that serve only ``startup`` seconds after they were
created. The replayed side is the backtest's world (``autoscaler/backtest/world.py``) on the
demand the simulator served, with the same startup and the pod's CPU request as the capacity
per replica, and foresight's backtest policy.

Both start from the same moment: a week (``history_days``) of the trace is in the store, as
``foresight run`` reads it from Prometheus on day one, and the backtest uses the same week as
its warm-up. Both start with the replica count the backtest's policy chooses for that moment,
all pods ready.

A step of the live run at time t: the cluster advances to t (pods whose startup is over become
ready; usage is integrated with the demand at t); one collection cycle; the SLO is scored
(demand at t against the ready pods' requests, from the simulator's own state, not from what
foresight believes); one reconcile; the cluster's controllers then act on the new replica count
at once, as the Deployment and ReplicaSet controllers do within a second of a scale call, so
new pods are created at t and ready at t + startup, as in the backtest.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from kubernetes import client as k8s
from numpy.typing import NDArray

from autoscaler.backtest.foresight import ForesightPolicy, backtest_horizontal_settings
from autoscaler.backtest.world import Replay, World, WorldConfig, replay
from autoscaler.controller.settings import ControllerSettings
from autoscaler.demo.run import loopback_collectors, workload_pods, write_history
from autoscaler.resource.crd import crd_manifest
from autoscaler.resource.model import API_VERSION, GROUP, KIND, PLURAL, VERSION
from autoscaler.service import Service
from autoscaler.settings import Settings
from collectors.kube import api_client
from runtime.clock import VirtualClock
from simulator.cluster import SimulatedCluster
from simulator.load import LoadSource, load_source
from simulator.scenario import LoadSpec, Scenario

__all__ = [
    "LIVE_START",
    "LiveOptions",
    "ParityConfig",
    "live_run",
    "replayed_run",
    "trace_load",
    "trace_world",
]

DAY = 86_400.0
NAMESPACE = "bench"
WORKLOAD = "app"
KEY = (NAMESPACE, WORKLOAD)
# Monday 2026-01-05 00:00 UTC: the live part starts here, whatever the trace's own dates.
LIVE_START = 1_767_571_200.0
# One pod requests one core: the capacity per replica, exact in a CPU quantity.
CAPACITY = 1.0


@dataclass(frozen=True)
class ParityConfig:
    """The shared world: grid step, pod startup, size of the workload, history and length."""

    step_seconds: float = 15.0
    startup_seconds: float = 60.0
    peak_replicas: int = 20
    history_days: float = 7.0
    days: float = 2.0
    # The controller's history grid (None: the service's default).
    history_step_seconds: float | None = None

    @property
    def steps(self) -> int:
        """Scored steps."""
        return round(self.days * DAY / self.step_seconds)

    @property
    def preroll_seconds(self) -> float:
        """Time the cluster runs before scoring starts: the initial pods start and report
        usage (a multiple of the step, at least one step more than the startup)."""
        return (math.ceil(self.startup_seconds / self.step_seconds - 1e-9) + 1) * self.step_seconds

    @property
    def history_seconds(self) -> float:
        """Trace seconds before the scored part: the backfilled history and the pre-roll."""
        return self.history_days * DAY

    @property
    def horizon_seconds(self) -> int:
        """The forecast horizon the backtest's policy uses: startup plus one step."""
        steps = math.ceil(self.startup_seconds / self.step_seconds - 1e-9) + 1
        return math.ceil(steps * self.step_seconds)


def _load_spec(trace: Path, config: ParityConfig) -> LoadSpec:
    # The simulator's clock starts one pre-roll before the scored part, which begins one
    # week into the trace.
    offset = config.history_seconds - config.preroll_seconds
    return LoadSpec.model_validate(
        {"trace": trace.resolve(), "peak": config.peak_replicas * CAPACITY, "offset": offset}
    )


def trace_load(trace: Path, config: ParityConfig) -> LoadSource:
    """The trace as the simulator serves it (scaled so its p99 needs ``peak_replicas``)."""
    return load_source(_load_spec(trace, config), None, LIVE_START, 0)


def trace_world(trace: Path, config: ParityConfig) -> World:
    """The backtest's world on the simulator's demand: history, pre-roll and scored days."""
    load = trace_load(trace, config)
    step = config.step_seconds
    first = -config.history_seconds + config.preroll_seconds  # simulator time of the trace start
    warm = round(config.history_seconds / step)
    times = first + step * np.arange(warm + config.steps, dtype=np.float64)
    demand = np.fromiter((load.demand(float(t)) for t in times), np.float64, len(times))
    world_config = WorldConfig(
        step_seconds=step,
        startup_seconds=config.startup_seconds,
        peak_replicas=config.peak_replicas,
        warmup_seconds=warm * step,
    )
    start = LIVE_START - config.history_seconds
    return World(trace.stem, world_config, start, np.maximum(demand, 0.0), CAPACITY, warm)


def replayed_run(world: World) -> Replay:
    """foresight's backtest policy through ``world``."""
    return replay(world, ForesightPolicy(world.info))


def _scenario(trace: Path, config: ParityConfig, initial: int) -> Scenario:
    # Nodes large enough that scheduling never limits the replica count, few enough that a
    # collection cycle stays short; no CPU limit, so usage is the demand, never throttled.
    return Scenario.model_validate(
        {
            "name": "parity",
            "start": LIVE_START - config.preroll_seconds,
            "tick": config.step_seconds,
            "nodes": [{"name": "node", "count": 2, "cpu": 4000, "memory": 64 * 2**40}],
            "namespaces": [NAMESPACE],
            "workloads": [
                {
                    "name": WORKLOAD,
                    "namespace": NAMESPACE,
                    "replicas": initial,
                    "requests": {"cpu": "1", "memory": "64Mi"},
                    "startupSeconds": config.startup_seconds,
                    "load": _load_spec(trace, config),
                    "memory": {"base": 32 * 2**20, "perCore": 0},
                }
            ],
        }
    )


def _autoscaler(config: ParityConfig) -> dict[str, Any]:
    """The backtest's horizontal settings as a PredictiveAutoscaler."""
    h = backtest_horizontal_settings()
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": WORKLOAD, "namespace": NAMESPACE},
        "spec": {
            "targetRef": {"kind": "Deployment", "name": WORKLOAD},
            "mode": "Auto",
            "horizontal": {
                "minReplicas": h.min_replicas,
                "maxReplicas": h.max_replicas,
                "metric": {"type": "CPU", "targetUtilization": round(100 * h.target_utilisation)},
                "scaleDownStabilizationSeconds": round(h.scale_down_stabilisation_seconds),
            },
            "forecast": {"horizonSeconds": config.horizon_seconds},
        },
    }


@dataclass
class LiveOptions:
    """Variations of the live run: settings merged over the run's own (group by group), where
    the week of history goes (default: into the service's store before it starts), and work
    after each collection and after each reconcile (step ``k``)."""

    settings: dict[str, Any] = field(default_factory=dict)
    history: Callable[[Service, LoadSource, float], None] | None = None
    after_collect: Callable[[Service], Awaitable[None]] | None = None
    after_control: Callable[[Service, int], Awaitable[None]] | None = None


def _settings(out: Path, kubeconfig: Path, config: ParityConfig, extra: dict[str, Any]) -> Settings:
    history_step = config.history_step_seconds or ControllerSettings().history_step_seconds
    base: dict[str, Any] = {
        "store": {"data_dir": out / "data"},
        "rules": {"state_dir": out / "alerts"},
        "kubernetes": {"kubeconfig": kubeconfig, "retry_initial_seconds": 0.5},
        # A loaded machine must not turn into missing samples that a replay lacks.
        "collectors": loopback_collectors(scrape_timeout=30),
        "controller": {
            "interval_seconds": config.step_seconds,
            "history_step_seconds": history_step,
        },
        "leader": {"enabled": False},
        "server": {"host": "127.0.0.1", "port": 0},
    }
    for group, values in extra.items():
        mine = base.get(group)
        base[group] = (
            {**mine, **values} if isinstance(mine, dict) and isinstance(values, dict) else values
        )
    return Settings.model_validate(base)


@dataclass
class _Counts:
    ready: NDArray[np.int64]
    replicas: NDArray[np.int64]
    demand: NDArray[np.float64]


async def live_run(
    trace: Path,
    config: ParityConfig,
    initial: int,
    progress: Callable[[str], None] | None = None,
    out: Path | None = None,
    options: LiveOptions | None = None,
) -> Replay:
    """The trace through the live service; figures as a :class:`Replay` of the scored steps."""
    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        return await _live(
            trace, config, initial, progress, out or Path(tmp), options or LiveOptions()
        )


async def _live(
    trace: Path,
    config: ParityConfig,
    initial: int,
    progress: Callable[[str], None] | None,
    out: Path,
    options: LiveOptions,
) -> Replay:
    scenario = _scenario(trace, config, initial)
    assert scenario.start is not None
    clock = VirtualClock(start=scenario.start, autoadvance=False)
    cluster = SimulatedCluster(scenario, clock)
    await cluster.start(run_loop=False)
    kubeconfig = out / "kubeconfig"
    cluster.write_kubeconfig(kubeconfig)
    settings = _settings(out, kubeconfig, config, options.settings)
    api = api_client(settings.kubernetes)
    service = Service(settings, clock, api=api, persistent=True)
    step = config.step_seconds
    n = config.steps
    counts = _Counts(np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.float64))
    load = cluster.kubelets.behaviours[(NAMESPACE, WORKLOAD)].load
    assert load is not None
    wall = time.perf_counter()
    try:
        crd: Any = crd_manifest()
        ext = k8s.ApiextensionsV1Api(api)
        await asyncio.to_thread(ext.create_custom_resource_definition, crd)
        custom = k8s.CustomObjectsApi(api)
        await asyncio.to_thread(
            custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            _autoscaler(config),
        )
        # The history ends where the cluster's own collection begins.
        (options.history or partial(_backfill, config=config))(service, load, scenario.start)
        await service.start()
        await service.wait_synced()
        for _ in range(round(config.preroll_seconds / step)):
            await cluster.advance(step)
            await _collect(service, options)
        every = max(1, round(3 * 3600 / step))
        for k in range(n):
            if k:
                await cluster.advance(step)
                await _collect(service, options)
            counts.demand[k] = load.demand(clock.now() - scenario.start)
            counts.ready[k] = workload_pods(cluster, KEY)[1]
            await service.control_once()
            if options.after_control is not None:
                await options.after_control(service, k)
            # The Deployment and ReplicaSet controllers act on a scale within a second.
            cluster.step()
            counts.replicas[k] = workload_pods(cluster, KEY)[0]
            if progress is not None and ((k + 1) % every == 0 or k + 1 == n):
                hours = (k + 1) * step / 3600
                progress(
                    f"  live {hours:5.1f} h of {n * step / 3600:g} h simulated "
                    f"({time.perf_counter() - wall:.0f} s wall): {counts.replicas[k]} pods, "
                    f"{counts.demand[k]:.1f} cores"
                )
    finally:
        await service.close()
        api.close()
        await cluster.stop()
        await clock.aclose()
    return Replay(
        demand=counts.demand,
        replicas=counts.replicas,
        ready=counts.ready,
        initial=initial,
        capacity=CAPACITY,
        step_seconds=step,
    )


async def _collect(service: Service, options: LiveOptions) -> None:
    await service.collect_once()
    if options.after_collect is not None:
        await options.after_collect(service)


def _backfill(service: Service, load: LoadSource, start: float, config: ParityConfig) -> None:
    """The trace's week before the cluster started, on the world's grid."""
    days = (config.history_seconds - config.preroll_seconds) / DAY
    write_history(service.store, load, NAMESPACE, WORKLOAD, start, days, step=config.step_seconds)
