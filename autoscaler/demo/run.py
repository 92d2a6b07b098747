"""The demo: the default scenario's cluster and the whole service in one process.

Time is virtual and moves only when the demo moves it: each step advances the simulated
cluster by ``step`` seconds, runs one collection cycle and one reconcile of every
PredictiveAutoscaler, exactly as ``foresight run`` would on its timers. A week of history is
first written to the store from the scenario's own load model (what ``foresight run`` reads
from an existing Prometheus on day one), so the forecasters have a past to learn from.

The summary compares like with like: the same demand, every 15 s after the same week, is
replayed in the backtest's world through the Kubernetes HPA algorithm (target 70 %) and
through each workload's PredictiveAutoscaler as declared (``bench.parity`` checks that such a
replay predicts the live service). The live run's own figures are given beside them, scored
on the pods the simulated cluster ran; they differ where the replay models nothing, such as
the node failure. An SLO violation is a step where the load exceeds what the ready pods
requested.

Any scenario file runs the same way (``DemoOptions.scenario``): its nodes, workloads, load and
faults, and the PredictiveAutoscalers it declares; the horizontally scaled Deployments with a
load are the ones scored against the HPA. Every workload an autoscaler targets gets its
resizes, replica range and request ranges over the run in the summary.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from kubernetes import client as k8s

from autoscaler.backtest.foresight import ForesightPolicy
from autoscaler.backtest.plot import PlotsUnavailable
from autoscaler.backtest.reference import HpaPolicy
from autoscaler.backtest.scoring import score
from autoscaler.backtest.world import Replay, World, WorldConfig, replay
from autoscaler.controller.decide import horizontal_settings
from autoscaler.controller.workload import pods_by_workload, view_of
from autoscaler.cost.formats import to_json
from autoscaler.cost.service import load_report
from autoscaler.cost.sources import StoreSeries
from autoscaler.demo.autoscalers import demo_autoscalers, scenario_autoscalers
from autoscaler.demo.receiver import WebhookReceiver
from autoscaler.resource.crd import crd_manifest
from autoscaler.resource.model import GROUP, PLURAL, VERSION, PredictiveAutoscalerSpec
from autoscaler.service import Service
from autoscaler.settings import Settings
from collectors.kube import api_client
from dashboards import write_all
from runtime import names
from runtime.clock import VirtualClock
from runtime.quantity import parse_quantity
from runtime.signals import stop_on_signals
from simulator.cluster import SimulatedCluster
from simulator.faults import FaultSpec
from simulator.load import LoadSource
from simulator.scenario import LoadSpec, Scenario, WorkloadSpec, load_scenario
from tsdb import Store
from tsdb.selector import parse_selector

__all__ = ["DemoOptions", "loopback_collectors", "run_demo", "workload_pods", "write_history"]

# Monday 2026-01-05 00:00 UTC: the demo day is a working day.
START = 1_767_571_200.0
HOUR = 3600.0
HPA_TARGET = 0.7
# The HPA's default sync period: the reference replays it on this grid.
HPA_STEP = 15.0
# Scoring starts once the scenario's initial pods have had time to become ready.
SETTLE_SECONDS = 300.0
BACKFILL_STEP = 60.0


@dataclass
class DemoOptions:
    """What to replay and where to write."""

    out: Path
    hours: float = 24.0
    step_seconds: float = 30.0
    backfill_days: float = 7.0
    trace: Path | None = None
    progress: Callable[[str], None] = print
    keep_serving: bool = False
    # A scenario file instead of the built-in one and its autoscalers, node failure and trace.
    scenario: Path | None = None
    # Called at the end with the service still open (tests serve its /metrics to Prometheus).
    inspect: Callable[[Service], Awaitable[None]] | None = None


@dataclass
class _Track:
    """One horizontally scaled workload over the demo."""

    namespace: str
    name: str
    request: float
    startup: float
    demand: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    forecast: list[float] = field(default_factory=list)


@dataclass
class _Ranges:
    """What an autoscaler's target looked like over the demo: replicas and requests."""

    replicas: list[int] = field(default_factory=list)
    # (container, resource) -> [lowest, highest] request seen on any of its pods
    requests: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def observe(self, replicas: int, requests: list[tuple[str, str, float]]) -> None:
        self.replicas.append(replicas)
        for container, resource, value in requests:
            seen = self.requests.setdefault((container, resource), [value, value])
            seen[0], seen[1] = min(seen[0], value), max(seen[1], value)

    def summary(self, resizes: int) -> dict[str, Any]:
        requests: dict[str, dict[str, dict[str, float]]] = {}
        for (container, resource), (low, high) in sorted(self.requests.items()):
            requests.setdefault(container, {})[resource] = {"min": low, "max": high}
        return {
            "resizes": resizes,
            "replicas": {
                "min": min(self.replicas, default=0),
                "max": max(self.replicas, default=0),
            },
            "requests": requests,
        }


def _scenario(trace: Path | None, path: Path | None = None) -> Scenario:
    if path is not None:
        return load_scenario(path)
    scenario = load_scenario("default")
    if trace is None:
        return scenario
    workloads = []
    for w in scenario.workloads:
        if (w.namespace, w.name) == ("shop", "frontend"):
            assert w.load is not None
            load = LoadSpec.model_validate({"trace": trace.resolve(), "peak": w.load.peak})
            workloads.append(
                WorkloadSpec.model_validate({**w.model_dump(by_alias=True), "load": load})
            )
        else:
            workloads.append(w)
    return scenario.model_copy(update={"workloads": tuple(workloads), "start": START})


def _settings(out: Path, kubeconfig: Path, receiver_url: str, step: float) -> Settings:
    return Settings.model_validate(
        {
            "store": {"data_dir": out / "data"},
            "rules": {"state_dir": out / "alerts"},
            "notify": {
                "route": {"receiver": "demo", "group_wait": 30, "group_interval": 300},
                "receivers": [{"name": "demo", "webhook_configs": [{"url": receiver_url}]}],
            },
            "kubernetes": {"kubeconfig": kubeconfig, "retry_initial_seconds": 0.5},
            # Loopback kubelets answer in milliseconds; a failed node must not stall
            # virtual time for the 10 s a real network is given.
            "collectors": loopback_collectors(scrape_timeout=0.5),
            "leader": {"enabled": False},
            # The API needs a token even here: one made for this run (see api_token).
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "api_port": 0,
                "auth": "token-file",
                "token_file": out / TOKEN_FILE,
            },
            "controller": {"interval_seconds": step},
        }
    )


TOKEN = "api-token"
TOKEN_FILE = "api-tokens.csv"


def api_token(out: Path) -> str:
    """A token for this run's API, written alone to ``out/api-token`` (for curl and Grafana)
    and as the token file ``server.token_file`` reads, both readable by the owner only."""
    token = secrets.token_urlsafe(32)
    for name, text in ((TOKEN, token + "\n"), (TOKEN_FILE, f"{token},demo,demo,foresight:admin\n")):
        path = out / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    return token


async def serve_api(service: Service, out: Path) -> str:
    """Start the service's HTTP servers on loopback; returns a line saying where the API and
    ``/metrics`` are, and where the token is."""
    await service.serve_http()
    return (
        f"Prometheus' query API (a Grafana data source), silences, rules and alerts on "
        f"http://127.0.0.1:{service.api_port} with the header "
        f"'Authorization: Bearer <the token in {out / TOKEN}>'; "
        f"/metrics on http://127.0.0.1:{service.port}/metrics"
    )


def loopback_collectors(scrape_timeout: float) -> dict[str, Any]:
    """Collector settings for the simulated cluster's plain-HTTP kubelets on loopback."""
    return {
        "kubelet_scheme": "http",
        "stagger_seconds": 0,
        "token_file": None,
        "ca_file": None,
        "scrape_timeout_seconds": scrape_timeout,
    }


async def _install(api: k8s.ApiClient, autoscalers: list[dict[str, Any]]) -> None:
    """The CRD and the demo's autoscalers, through the API as kubectl would create them."""
    ext = k8s.ApiextensionsV1Api(api)
    crd: Any = crd_manifest()  # the client serialises plain dicts as they are
    await asyncio.to_thread(ext.create_custom_resource_definition, crd)
    custom = k8s.CustomObjectsApi(api)
    for pas in autoscalers:
        ns = pas["metadata"]["namespace"]
        await asyncio.to_thread(
            custom.create_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, pas
        )


def write_history(
    store: Store,
    load: LoadSource,
    namespace: str,
    name: str,
    start: float,
    days: float,
    step: float = BACKFILL_STEP,
) -> None:
    """``days`` of a Deployment's CPU usage before ``start``, from its load model, every
    ``step`` seconds."""
    ref = store.ref(
        {
            "__name__": names.WORKLOAD_CPU_CORES,
            "namespace": namespace,
            "workload_kind": "Deployment",
            "workload": name,
        }
    )
    for t in np.arange(-days * 86_400, 0, step):
        store.append(ref, round((start + t) * 1000), load.demand(float(t)))


def workload_pods(cluster: SimulatedCluster, key: tuple[str, str]) -> tuple[int, int]:
    """(pods, ready pods) of the Deployment ``key`` as the simulated kubelets run them."""
    pods = ready = 0
    for node in cluster.kubelets.nodes.values():
        for p in node.pods.values():
            if p.workload != key or p.done:
                continue
            pods += 1
            ready += int(p.ready and node.ready)
    return pods, ready


async def run_demo(options: DemoOptions) -> dict[str, Any]:
    """Run the demo; write ``summary.json``, ``report.png`` and ``events.jsonl``."""
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    say = options.progress
    wall = time.perf_counter()
    scenario = _scenario(options.trace, options.scenario)
    if scenario.start is None:
        scenario = scenario.model_copy(update={"start": START})
    assert scenario.start is not None
    start = scenario.start
    autoscalers = demo_autoscalers() if options.scenario is None else scenario_autoscalers(scenario)
    # Only the demo moves time: every part sees the same instant while a step runs.
    clock = VirtualClock(start=start, autoadvance=False)
    cluster = SimulatedCluster(scenario, clock)
    await cluster.start(run_loop=False)
    if options.scenario is None:
        # The day's incidents besides the flash crowd: a worker node fails for half an hour.
        cluster.inject(FaultSpec(type="node-down", node="worker-3", at=15 * HOUR, duration=1800))
    kubeconfig = out / "kubeconfig"
    cluster.write_kubeconfig(kubeconfig)
    say(
        f"simulated cluster {scenario.name!r} on {cluster.api_url}; watch it live with\n"
        f"  kubectl --kubeconfig {kubeconfig} get pas,deploy -A"
    )
    receiver = WebhookReceiver()
    api_token(out)
    settings = _settings(out, kubeconfig, await receiver.start(), options.step_seconds)
    api = api_client(settings.kubernetes)
    service = Service(settings, clock, api=api, persistent=True)
    tracks = {
        (w.namespace, w.name): _Track(
            w.namespace,
            w.name,
            parse_quantity(w.requests.get("cpu", "0")),
            w.startup_seconds,
        )
        for w in scenario.workloads
        if (w.namespace, w.name) in _scored_targets(autoscalers, scenario)
    }
    ranges = {target: _Ranges() for target in _targets(autoscalers)}
    try:
        await _install(api, autoscalers)
        for key in tracks:
            load = _load_of(cluster, key)
            write_history(service.store, load, *key, start, options.backfill_days)
        say(f"history: {options.backfill_days:g} days of load written from the scenario's model")
        await service.start()
        await service.wait_synced()
        stop_alerts = asyncio.Event()
        alerting = asyncio.create_task(service.alerts.run(stop_alerts), name="alerts")
        steps = round(options.hours * HOUR / options.step_seconds)
        report_every = max(1, round(HOUR / options.step_seconds))
        for i in range(steps):
            await cluster.advance(options.step_seconds)
            await service.collect_once()
            acted = len(service.controller.actions_log)
            await service.control_once()
            if len(service.controller.actions_log) != acted:
                # The Deployment and ReplicaSet controllers act on a scale within a second,
                # not at the simulator's next tick.
                cluster.step()
            _record(tracks, service, cluster, clock.now() - start)
            _observe(ranges, service)
            if (i + 1) % report_every == 0 or i + 1 == steps:
                say(_progress_line(i + 1, steps, options.step_seconds, service, tracks, wall))
                service.store.flush()
        loads = {k: _load_of(cluster, k) for k in tracks}
        stop_alerts.set()
        await alerting
        summary = _summary(options, tracks, loads, service, wall, start, autoscalers)
        summary["scenario"] = scenario.name
        _add_ranges(summary, ranges, autoscalers, service.controller.actions_log)
        summary.update(_alert_summary(receiver))
        summary["cost"] = await _cost_summary(service, clock.now(), options.hours)
        _write_outputs(out, summary, tracks, service, options, receiver, start)
        if options.inspect is not None:
            await options.inspect(service)
        if options.keep_serving:
            say(await serve_api(service, out))
            say(f"serving the simulated cluster until Ctrl-C (kubeconfig: {kubeconfig})")
            await _until_interrupted()
        return summary
    finally:
        await service.close()
        await receiver.stop()
        api.close()
        await cluster.stop()
        await clock.aclose()


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    stop_on_signals(stop)
    await stop.wait()


def _load_of(cluster: SimulatedCluster, key: tuple[str, str]) -> LoadSource:
    load = cluster.kubelets.behaviours[key].load
    assert load is not None, f"{key} has no load"
    return load


def _record(
    tracks: dict[tuple[str, str], _Track],
    service: Service,
    cluster: SimulatedCluster,
    elapsed: float,
) -> None:
    snapshots = {(s.namespace, s.name): s for s in service.controller.snapshots()}
    for key, track in tracks.items():
        behaviour = cluster.kubelets.behaviours[key]
        assert behaviour.load is not None
        track.demand.append(behaviour.load.demand(elapsed))
        # What the cluster runs, not what foresight believes it runs.
        replicas, ready = workload_pods(cluster, key)
        track.replicas.append(replicas)
        track.ready.append(ready)
        snap = snapshots.get(key)
        track.forecast.append(
            snap.forecast if snap is not None and snap.forecast is not None else np.nan
        )


def _progress_line(
    done: int,
    steps: int,
    step: float,
    service: Service,
    tracks: dict[tuple[str, str], _Track],
    wall: float,
) -> str:
    hours = done * step / HOUR
    parts = [f"{t.name} {t.replicas[-1]} pods ({t.demand[-1]:.2f} cores)" for t in tracks.values()]
    actions = len(service.controller.actions_log)
    return (
        f"[{hours:5.1f} h simulated, {time.perf_counter() - wall:5.1f} s wall] "
        + ", ".join(parts)
        + f", {actions} actions"
    )


def _scored(run: Replay) -> Replay:
    """The replay without its first minutes, while the scenario's first pods start."""
    skip = min(len(run.demand) - 1, round(SETTLE_SECONDS / run.step_seconds))
    if skip <= 0:
        return run
    return Replay(
        demand=run.demand[skip:],
        replicas=run.replicas[skip:],
        ready=run.ready[skip:],
        initial=int(run.replicas[skip - 1]),
        capacity=run.capacity,
        step_seconds=run.step_seconds,
    )


def _live_replay(track: _Track, step: float) -> Replay:
    """The live run's own steps, as a replay to score."""
    return _scored(
        Replay(
            demand=np.asarray(track.demand),
            replicas=np.asarray(track.replicas, np.int64),
            ready=np.asarray(track.ready, np.int64),
            initial=track.replicas[0] if track.replicas else 1,
            capacity=track.request,
            step_seconds=step,
        )
    )


def _world(track: _Track, load: LoadSource, hours: float, warm: np.ndarray, start: float) -> World:
    """The day's demand every 15 s after the same week: the world both replays share."""
    live = np.array([load.demand(t) for t in np.arange(1, hours * HOUR / HPA_STEP + 1) * HPA_STEP])
    warm = np.repeat(warm, round(BACKFILL_STEP / HPA_STEP))
    config = WorldConfig(
        step_seconds=HPA_STEP, startup_seconds=track.startup, warmup_seconds=len(warm) * HPA_STEP
    )
    demand = np.concatenate([warm, live])
    return World(track.name, config, start - len(warm) * HPA_STEP, demand, track.request, len(warm))


def _hpa(world: World) -> Replay:
    """The Kubernetes HPA at 70 % on the world's demand."""
    return _scored(replay(world, HpaPolicy(world.info, HPA_TARGET)))


def _foresight(world: World, pas: dict[str, Any], settings: Settings) -> Replay:
    """The workload's PredictiveAutoscaler, as declared, in the backtest's world."""
    spec = PredictiveAutoscalerSpec.model_validate(pas["spec"])
    assert spec.horizontal is not None
    forecast = settings.forecast.model_copy(
        update={"model": spec.forecast.model, "quantile": spec.forecast.quantile}
    )
    policy = ForesightPolicy(
        world.info,
        forecast,
        horizontal_settings(spec.horizontal, settings.policy.horizontal),
        horizon_seconds=spec.forecast.horizon_seconds,
    )
    return _scored(replay(world, policy))


def _summary(
    options: DemoOptions,
    tracks: dict[tuple[str, str], _Track],
    loads: dict[tuple[str, str], LoadSource],
    service: Service,
    wall: float,
    start: float,
    autoscalers: list[dict[str, Any]],
) -> dict[str, Any]:
    """Figures per workload and overall (violations: the mean over workloads).

    foresight and the HPA are compared as they are in ``foresight backtest``: both replayed
    on the same demand every 15 s (``bench.parity`` checks that a replay predicts the live
    service). The live run's own figures are given beside them; they also count what the
    replay does not model, such as a node failure.
    """
    step = options.step_seconds
    per_workload = {}
    totals = dict.fromkeys(
        (
            "steps",
            "violations",
            "cost",
            "hpa_violations",
            "hpa_cost",
            "live_violations",
            "live_cost",
        ),
        0.0,
    )
    declared = {
        (pas["metadata"]["namespace"], pas["spec"]["targetRef"]["name"]): pas
        for pas in autoscalers
        if "horizontal" in pas["spec"]
    }
    for key, track in tracks.items():
        world = _world(track, loads[key], options.hours, _history(service, track, start), start)
        f = score(_foresight(world, declared[key], service.settings), 1.0)
        h = score(_hpa(world), 1.0)
        live = score(_live_replay(track, step), 1.0)
        per_workload[f"{track.namespace}/{track.name}"] = {
            "violation_pct": round(f.violation_pct, 3),
            "cost_replica_hours": round(f.replica_seconds / HOUR, 2),
            "scaling_actions": f.actions,
            "hpa_violation_pct": round(h.violation_pct, 3),
            "hpa_cost_replica_hours": round(h.replica_seconds / HOUR, 2),
            "hpa_scaling_actions": h.actions,
            "live_violation_pct": round(live.violation_pct, 3),
            "live_cost_replica_hours": round(live.replica_seconds / HOUR, 2),
            "live_scaling_actions": live.actions,
        }
        totals["steps"] += 1
        totals["violations"] += f.violation_pct / 100
        totals["hpa_violations"] += h.violation_pct / 100
        totals["live_violations"] += live.violation_pct / 100
        totals["cost"] += f.replica_seconds / HOUR
        totals["hpa_cost"] += h.replica_seconds / HOUR
        totals["live_cost"] += live.replica_seconds / HOUR
    steps = max(1, int(totals["steps"]))
    controller = service.controller
    actions = controller.actions_log
    recommendations = [
        {
            "autoscaler": f"{s.namespace}/{s.name}",
            "container": container,
            "resource": resource,
            "request": value,
        }
        for s in controller.snapshots()
        for (container, resource), value in sorted(s.recommendations.items())
    ]
    return {
        "simulated_hours": options.hours,
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "scaling_actions": len([a for a in actions if a["kind"] == "scale"]),
        "resize_actions": len([a for a in actions if a["kind"] != "scale"]),
        "violation_pct": round(100 * totals["violations"] / steps, 3),
        "cost_replica_hours": round(totals["cost"], 2),
        "hpa_violation_pct": round(100 * totals["hpa_violations"] / steps, 3),
        "hpa_cost_replica_hours": round(totals["hpa_cost"], 2),
        # How the two figures above were made: both replayed in the backtest's world.
        "comparison": "replayed",
        "live_violation_pct": round(100 * totals["live_violations"] / steps, 3),
        "live_cost_replica_hours": round(totals["live_cost"], 2),
        "alerts_delivered": 0,
        "recommendations": recommendations,
        "workloads": per_workload,
        "reconcile_errors": controller.reconcile_errors,
        "oom_kills": _oom_kills(service),
    }


def _targets(autoscalers: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[str]]:
    """(namespace, kind, name) of each target -> the autoscalers (``ns/name``) on it."""
    targets: dict[tuple[str, str, str], list[str]] = {}
    for pas in autoscalers:
        ns, ref = pas["metadata"]["namespace"], pas["spec"]["targetRef"]
        who = f"{ns}/{pas['metadata']['name']}"
        targets.setdefault((ns, ref.get("kind", "Deployment"), ref["name"]), []).append(who)
    return targets


def _scored_targets(autoscalers: list[dict[str, Any]], scenario: Scenario) -> set[tuple[str, str]]:
    """Deployments scaled horizontally on a load the scenario models: scored against the HPA."""
    loaded = {(w.namespace, w.name) for w in scenario.workloads if w.load is not None}
    return {
        (pas["metadata"]["namespace"], pas["spec"]["targetRef"]["name"])
        for pas in autoscalers
        if "horizontal" in pas["spec"]
        and pas["spec"]["targetRef"].get("kind", "Deployment") == "Deployment"
    } & loaded


def _observe(ranges: dict[tuple[str, str, str], _Ranges], service: Service) -> None:
    model = service.watcher.model
    pods = pods_by_workload(model)
    for (ns, kind, name), seen in ranges.items():
        view = view_of(model, pods, ns, kind, name)
        if view is not None:
            seen.observe(
                view.replicas,
                [(c.name, r, v) for c in view.containers for r, v in c.requests.items()],
            )


def _add_ranges(
    summary: dict[str, Any],
    ranges: dict[tuple[str, str, str], _Ranges],
    autoscalers: list[dict[str, Any]],
    actions: list[dict[str, Any]],
) -> None:
    """Per target: in-place resizes and template updates, replica and request ranges."""
    targets = _targets(autoscalers)
    for key, seen in ranges.items():
        resizes = sum(
            1
            for a in actions
            if a["kind"] in ("resize", "recreate") and a["autoscaler"] in targets[key]
        )
        row = summary["workloads"].setdefault(f"{key[0]}/{key[2]}", {})
        row.update(seen.summary(resizes))


def _oom_kills(service: Service) -> dict[str, int]:
    """Containers whose last restart was an OOM kill, by workload, at the end of the day."""
    model = service.watcher.model
    kills: dict[str, int] = {}
    for pod in model.pods():
        owner = model.workload_of(pod)
        for c in pod.containers:
            if c.last_termination_reason == "OOMKilled" and owner is not None:
                key = f"{pod.namespace}/{owner[1]}"
                kills[key] = kills.get(key, 0) + c.restarts
    return kills


def _alert_summary(receiver: WebhookReceiver) -> dict[str, Any]:
    alerts = receiver.alerts()
    firing: dict[str, int] = {}
    for alert in alerts:
        if alert.get("status") == "firing":
            name = alert.get("labels", {}).get("alertname", "?")
            firing[name] = firing.get(name, 0) + 1
    return {
        "alerts_delivered": len(alerts),
        "notifications_delivered": len(receiver.payloads),
        "alerts_firing_by_name": dict(sorted(firing.items())),
    }


async def _cost_summary(service: Service, now: float, hours: float) -> dict[str, Any]:
    """Cost of the simulated day by namespace, from the store, as ``foresight cost`` does."""
    service.store.flush()
    source = StoreSeries(service.store, service.settings.promql, "demo")
    report = await load_report(
        source, "namespace", now, hours * HOUR, service.settings.cost, step_s=300
    )
    return cast(dict[str, Any], json.loads(to_json(report)))


def _history(service: Service, track: _Track, start: float) -> np.ndarray:
    """The backfilled week of the workload's load, as the store holds it."""
    selector = (
        f'{names.WORKLOAD_CPU_CORES}{{namespace="{track.namespace}",workload="{track.name}"}}'
    )
    series = service.store.select(parse_selector(selector), 0, round(start * 1000) - 1)
    return series[0].values if series else np.zeros(0)


def _write_outputs(
    out: Path,
    summary: dict[str, Any],
    tracks: dict[tuple[str, str], _Track],
    service: Service,
    options: DemoOptions,
    receiver: WebhookReceiver,
    start: float,
) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    with (out / "alerts.jsonl").open("w", encoding="utf-8") as f:
        for payload in receiver.payloads:
            f.write(json.dumps(payload) + "\n")
    write_all(out / "dashboards")
    with (out / "events.jsonl").open("w", encoding="utf-8") as f:
        for action in service.controller.actions_log:
            f.write(json.dumps({**action, "time": action["time"] - start}) + "\n")
    from autoscaler.demo.report import plot_report  # noqa: PLC0415

    try:
        plot_report(list(tracks.values()), options.step_seconds, out / "report.png")
    except PlotsUnavailable as e:
        # The figures are all in summary.json; the picture is the only thing missing.
        print(f"report.png not written: {e}", file=sys.stderr)
