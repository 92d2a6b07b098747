"""Chaos run: the whole service on the simulator for simulated days, with everything failing.

``python -m bench.chaos`` starts a simulated cluster, a webhook receiver and foresight's
``Service`` in a child process (:mod:`bench.chaos_child`), all on one accelerated virtual
clock, and then, following a seeded plan (:mod:`bench.chaos_plan`): kills foresight with
SIGKILL at random moments and starts it again; closes the receiver's port and makes it answer
503, 429 and hang; makes the Kubernetes API answer 500/503/429 and hang; drops every watch;
takes a node down; makes every kubelet fail (the load goes stale); and fills the store's disk
(a small tmpfs, see :mod:`bench.chaos_disk`). It ends with the account of
:mod:`bench.chaos_account`: one table (``--json`` for the machine), progress lines on stderr
while it runs. Exit status 1 when a loss line is not zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from autoscaler.demo.run import write_history
from autoscaler.resource.crd import crd_manifest
from autoscaler.resource.model import API_VERSION, KIND
from autoscaler.settings import load_settings
from bench.chaos_account import (
    Account,
    Incarnation,
    Observed,
    ScaleWrite,
    Timing,
    account,
)
from bench.chaos_disk import SmallDisk, mount_small_disk
from bench.chaos_plan import CHAOS_RULES, HOUR, Plan, make_plan
from bench.chaos_receiver import ChaosReceiver, Mode
from runtime import names
from runtime.clock import VirtualClock
from simulator.cluster import SimulatedCluster
from simulator.scenario import parse_scenario
from simulator.store import StorageKey, WatchEvent
from tsdb import Store, name_is

REPO = Path(__file__).resolve().parents[1]
# Monday 2026-01-05 00:00 UTC.
START = 1_767_571_200.0
TARGET = ("shop", "web")
MIN_REPLICAS, MAX_REPLICAS = 2, 12

SCENARIO = """
name: chaos
seed: 11
tick: 10s
nodes:
  - {name: node, count: 3, cpu: "16", memory: 64Gi}
namespaces: [shop, foresight]
workloads:
  - name: web
    namespace: shop
    replicas: 2
    requests: {cpu: 500m, memory: 128Mi}
    limits: {cpu: "2", memory: 256Mi}
    startupSeconds: 30
    load: {pattern: daily, peak: 4.0, base: 0.1, peakHour: 14, noise: 0.05}
    memory: {base: 64Mi, perCore: 32Mi}
  - name: worker
    namespace: shop
    replicas: 1
    requests: {cpu: 100m, memory: 128Mi}
    limits: {cpu: 500m, memory: 512Mi}
    startupSeconds: 5
    load: {pattern: constant, peak: 0.2}
    memory: {base: 100Mi, perCore: 0}
"""

# The service's timers in the run (virtual seconds), chosen so that 2 shared cores keep up.
SCRAPE_S = 30.0
FLUSH_S = 5.0
EVAL_S = 30.0
GROUP_WAIT_S = 30.0
GROUP_INTERVAL_S = 120.0
STALE_AFTER_S = 120.0
RESEND_DELAY_S = 300.0
# The bench reads /api/v1/alerts with this token (a viewer's, in the token file).
API_TOKEN = "chaos-viewer-token"


@dataclass
class ChaosConfig:
    """One run: how long, how fast, how many kills, and where its files go."""

    seed: int = 1
    duration_s: float = 2 * 24 * HOUR
    speed: float = 100.0
    kills: int = 24
    full: bool = True
    disk: bool = True
    settle_s: float = 20 * 60.0
    work: Path = Path("chaos-run")
    progress: Callable[[str], None] = field(default=lambda line: None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rules_file(path: Path) -> None:
    rules = [
        {
            "alert": r.name,
            "expr": r.expr(),
            "for": f"{r.for_s:g}s",
            "labels": {"severity": "info"},
            "annotations": {
                "summary": f"{r.name}: active while time() % {r.period:g} < {r.window:g}"
            },
        }
        for r in CHAOS_RULES
    ]
    group = {"name": "chaos", "interval": f"{EVAL_S:g}s", "rules": rules}
    path.write_text(json.dumps({"groups": [group]}, indent=1), encoding="utf-8")


def _settings_file(
    work: Path, data_dir: Path, kubeconfig: Path, ports: tuple[int, int], hook: str
) -> Path:
    tokens = work / "api-tokens.csv"
    tokens.write_text(f'{API_TOKEN},chaos,1,"foresight:view"\n', encoding="utf-8")
    settings = {
        "log": {"level": "INFO"},
        "server": {
            "host": "127.0.0.1",
            "port": ports[0],
            "api_port": ports[1],
            "auth": "token-file",
            "token_file": str(tokens),
        },
        "store": {
            "data_dir": str(data_dir),
            "flush_interval_seconds": FLUSH_S,
            # Raw samples for the whole run: the account reads every cycle.
            "raw_retention_hours": 24 * 8,
        },
        "kubernetes": {
            "kubeconfig": str(kubeconfig),
            "request_timeout_seconds": 2,
            "retry_initial_seconds": 1,
            "retry_max_seconds": 30,
        },
        "collectors": {
            "kubelet_scheme": "http",
            "token_file": None,
            "ca_file": None,
            "scrape_interval_seconds": SCRAPE_S,
            "scrape_timeout_seconds": 2,
            "stagger_seconds": 0,
        },
        # A restarted container keeps its pod's name: the same identity takes the Lease back.
        "leader": {
            "enabled": True,
            "namespace": "foresight",
            "identity": "foresight-0",
            "lease_seconds": 60,
            "renew_seconds": 15,
        },
        "controller": {"interval_seconds": 30, "status_every_seconds": 300},
        "policy": {"horizontal": {"stale_after_seconds": STALE_AFTER_S}},
        "rules": {
            "files": [str(work / "chaos-rules.yml")],
            "state_dir": str(work / "alerts"),
            "evaluation_interval_seconds": EVAL_S,
            # A sent alert is valid for 4 x resend delay: with the default 60 s, an evaluation
            # round that stalls 2.4 real seconds at x100 (a loaded machine) lets the notifier
            # resolve a firing alert and announce it again, as Alertmanager would with
            # Prometheus. 300 s keeps that tolerance at 12 real seconds.
            "resend_delay_seconds": RESEND_DELAY_S,
        },
        "notify": {
            "route": {
                "receiver": "hook",
                "group_by": ["alertname"],
                "group_wait": GROUP_WAIT_S,
                "group_interval": GROUP_INTERVAL_S,
                "repeat_interval": 7 * 24 * HOUR,
            },
            "receivers": [
                {"name": "hook", "webhook_configs": [{"url": hook, "timeout_seconds": 1}]}
            ],
            "delivery": {"initial_backoff_seconds": 10, "max_backoff_seconds": 300},
        },
    }
    path = work / "foresight.yaml"
    path.write_text(json.dumps(settings, indent=1), encoding="utf-8")
    return path


def _pas() -> dict[str, Any]:
    ns, name = TARGET
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "targetRef": {"kind": "Deployment", "name": name},
            "mode": "Auto",
            "horizontal": {
                "minReplicas": MIN_REPLICAS,
                "maxReplicas": MAX_REPLICAS,
                "metric": {"type": "CPU", "targetUtilization": 80},
            },
            "forecast": {"horizonSeconds": 90},
        },
    }


class Foresight:
    """The fork server of :mod:`bench.chaos_child`, and the service processes it forks."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self._clock: VirtualClock | None = None
        self._anchor = ""
        self._server: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pids: asyncio.Queue[int] = asyncio.Queue()
        self._exits: dict[int, asyncio.Future[int]] = {}
        self.pid = 0
        self.incarnations: list[Incarnation] = []

    @property
    def clock(self) -> VirtualClock:
        assert self._clock is not None, "attach() first"
        return self._clock

    @property
    def current(self) -> Incarnation:
        return self.incarnations[-1]

    async def start_server(self) -> None:
        """Start the fork server and wait for its imports."""
        with self.log.open("ab") as err:
            self._server = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.chaos_child",
                str(self.config),
                cwd=REPO,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        assert self._server.stdout is not None
        line = await self._server.stdout.readline()
        if line.strip() != b"imported":
            raise RuntimeError(f"the chaos fork server did not start (see {self.log})")
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self._server is not None and self._server.stdout is not None
        async for raw in self._server.stdout:
            word, *rest = raw.decode().split()
            if word == "pid":
                await self._pids.put(int(rest[0]))
            elif word == "exit":
                self._exit(int(rest[0])).set_result(int(rest[1]))

    def _exit(self, pid: int) -> asyncio.Future[int]:
        fut = self._exits.get(pid)
        if fut is None:
            fut = self._exits[pid] = asyncio.get_running_loop().create_future()
        return fut

    def attach(self, clock: VirtualClock, speed: float) -> None:
        """Share ``clock``: virtual time is its reading now at this monotonic instant, for
        every process of the machine."""
        self._clock = clock
        self._anchor = f"{clock.now()!r} {time.monotonic()!r} {speed!r}\n"

    async def spawn(self) -> None:
        """Start a service process."""
        assert self._server is not None and self._server.stdin is not None
        self._server.stdin.write(self._anchor.encode())
        await self._server.stdin.drain()
        self.pid = await self._pids.get()
        self.incarnations.append(Incarnation(self.clock.now(), started_real=time.monotonic()))

    async def kill(self) -> None:
        """kill -9 of the running service process."""
        os.kill(self.pid, signal.SIGKILL)
        self.current.ended = self.clock.now()
        self.current.ended_real = time.monotonic()
        self.current.how = "kill"
        await self._exit(self.pid)

    def exited(self) -> int | None:
        """The exit code if the service process ended on its own."""
        if not self.incarnations or self.current.ended is not None:
            return None
        fut = self._exit(self.pid)
        if not fut.done():
            return None
        self.current.ended = self.clock.now()
        self.current.ended_real = time.monotonic()
        self.current.how = f"exit {fut.result()}"
        return fut.result()

    async def stop(self) -> int | None:
        """SIGTERM to the service process (a graceful stop), then the fork server goes."""
        code = None
        if self.incarnations and self.current.ended is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                code = await asyncio.wait_for(asyncio.shield(self._exit(self.pid)), 60)
            except TimeoutError:
                os.kill(self.pid, signal.SIGKILL)
                code = await self._exit(self.pid)
            self.current.ended = self.clock.now()
            self.current.ended_real = time.monotonic()
            self.current.how = "stop"
        if self._server is not None:
            assert self._server.stdin is not None
            self._server.stdin.close()
            try:
                await asyncio.wait_for(self._server.wait(), 10)
            except TimeoutError:
                self._server.kill()
                await self._server.wait()
        if self._reader is not None:
            await self._reader
        return code


@dataclass
class Run:
    """The state of a run in progress."""

    plan: Plan
    cluster: SimulatedCluster
    receiver: ChaosReceiver
    foresight: Foresight
    disk: SmallDisk | None
    http: httpx.AsyncClient
    base: str
    api: str
    active_at: dict[tuple[str, int], set[float]] = field(default_factory=dict)
    seen_firing: set[tuple[str, int]] = field(default_factory=set)
    scale_writes: list[ScaleWrite] = field(default_factory=list)
    replicas: dict[str, int] = field(default_factory=dict)
    disk_events: list[str] = field(default_factory=list)
    scrapes: list[float] = field(default_factory=list)


def _watch_scale(run: Run, deployments: StorageKey) -> Callable[[StorageKey, WatchEvent], None]:
    def listener(key: StorageKey, event: WatchEvent) -> None:
        if key != deployments or event.type != "MODIFIED":
            return
        obj = event.stored.obj
        name = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        new = int(obj.get("spec", {}).get("replicas", 0))
        old = run.replicas.get(name)
        run.replicas[name] = new
        if old is not None and old != new:
            run.scale_writes.append(ScaleWrite(run.cluster.clock.now(), name, old, new))

    return listener


async def _poll(run: Run, stop: asyncio.Event) -> None:
    """Readiness of the current incarnation, and the ``activeAt`` of every chaos alert."""
    periods = {r.name: r.period for r in CHAOS_RULES}
    while not stop.is_set():
        await asyncio.sleep(0.1)
        if not run.foresight.incarnations:
            continue
        inc = run.foresight.current
        if inc.ended is not None:
            continue
        try:
            if inc.ready is None:
                r = await run.http.get(f"{run.base}/readyz")
                if r.status_code == 200:
                    inc.ready = run.cluster.clock.now()
                    inc.ready_real = time.monotonic()
                continue
            r = await run.http.get(
                f"{run.api}/api/v1/alerts", headers={"Authorization": f"Bearer {API_TOKEN}"}
            )
        except httpx.HTTPError:
            continue
        if r.status_code != 200:
            continue
        for a in r.json()["data"]["alerts"]:
            name = a["labels"].get("alertname", "")
            if name in periods:
                t = _rfc3339(a["activeAt"])
                episode = (name, int(t // periods[name]))
                run.active_at.setdefault(episode, set()).add(t)
                if a.get("state") == "firing":
                    run.seen_firing.add(episode)


def _rfc3339(ts: str) -> float:
    from datetime import datetime  # noqa: PLC0415

    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _receiver_mode(plan: Plan, offset: float) -> Mode:
    for window, mode in plan.receiver:
        if window.covers(offset):
            return mode
    return "ok"


async def _restart(fs: Foresight, backoff: float) -> None:
    """Start foresight again, after ``backoff`` real seconds (the kubelet's back-off)."""
    await asyncio.sleep(backoff)
    await fs.spawn()


async def _drive(run: Run, cfg: ChaosConfig, start: float) -> None:
    """Apply the plan until its end, restarting foresight whenever it is down."""
    plan, fs = run.plan, run.foresight
    kills = list(plan.kills)
    next_report = HOUR
    clock = run.cluster.clock
    real0 = time.monotonic()
    restart: asyncio.Task[None] | None = None
    while True:
        await asyncio.sleep(0.02)
        offset = clock.now() - start
        if offset >= plan.duration + cfg.settle_s:
            if restart is not None:
                await restart
            return
        await run.receiver.set_mode(_receiver_mode(plan, offset))
        if run.disk is not None:
            full = any(w.covers(offset) for w in plan.disk_full)
            if full and not run.disk.full:
                taken = run.disk.fill()
                run.disk_events.append(f"{offset:.0f}s: disk full ({taken >> 20} MiB taken)")
            elif not full and run.disk.full:
                run.disk.release()
                run.disk_events.append(f"{offset:.0f}s: disk space back")
        # Restarts run beside this loop, so that the plan goes on meanwhile.
        if restart is not None and not restart.done():
            continue
        if restart is not None:
            restart.result()
            restart = None
        code = fs.exited()
        if code is not None:
            cfg.progress(
                f"  foresight exited with code {code} at {offset / HOUR:.2f} h; restarting"
            )
            restart = asyncio.ensure_future(_restart(fs, backoff=1.0))
            continue
        if kills and offset >= kills[0]:
            kills.pop(0)
            await fs.kill()
            restart = asyncio.ensure_future(_restart(fs, backoff=0.0))
        if offset >= next_report:
            next_report += HOUR * max(1, round(plan.duration / HOUR / 24))
            done = sum(1 for i in fs.incarnations if i.how == "kill")
            cfg.progress(
                f"[{offset / HOUR:6.1f} h / {plan.duration / HOUR:.0f} h] kills {done}/"
                f"{len(plan.kills)}, notifications accepted {len(run.receiver.arrivals)}, "
                f"receiver {run.receiver.mode}, scale writes {len(run.scale_writes)}, "
                f"real {time.monotonic() - real0:.0f} s"
            )


def _reference_samples(data_dir: Path, now: float, start: float) -> list[float]:
    settings = load_settings(None, {"store": {"data_dir": data_dir, "raw_retention_hours": 192}})
    clock = VirtualClock(start=now)
    store = Store(settings.store, clock)
    try:
        found = store.select([name_is(names.STORE_SERIES)], round(start * 1000), round(now * 1000))
    finally:
        store.close()
    return sorted(float(t) / 1000 for s in found for t in s.timestamps.tolist())


async def run_chaos(cfg: ChaosConfig) -> tuple[Account, Plan, dict[str, Any]]:
    """One whole run; returns its account, its plan and facts about the run."""
    work = cfg.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    scenario = parse_scenario(SCENARIO, "chaos.yaml")
    nodes = tuple(scenario.node_names())
    disk = mount_small_disk(work / "disk", 256) if cfg.disk and cfg.full else None
    plan = make_plan(cfg.seed, cfg.duration_s, cfg.kills, nodes, cfg.full, disk is not None)
    data_dir = (disk.path if disk is not None else work) / "store"
    fs = Foresight(work / "foresight.yaml", work / "foresight.log")
    await fs.start_server()
    clock = VirtualClock(start=START, speed=cfg.speed)
    cluster = SimulatedCluster(scenario, clock)
    start = cluster.start_time
    for fault in plan.faults:
        cluster.inject(fault)
    receiver = ChaosReceiver(clock.now, hold_seconds=3.0, retry_after=60)
    http = httpx.AsyncClient(timeout=2.0)
    facts: dict[str, Any] = {"full_disk": "tmpfs" if disk is not None else "not run"}
    try:
        await cluster.start()
        cluster.create(crd_manifest())
        cluster.create(_pas())
        await receiver.start()
        kubeconfig = work / "kubeconfig"
        cluster.write_kubeconfig(kubeconfig)
        _rules_file(work / "chaos-rules.yml")
        port, api_port = _free_port(), _free_port()
        config = _settings_file(work, data_dir, kubeconfig, (port, api_port), receiver.url)
        settings = load_settings(config)
        load = cluster.kubelets.behaviours[TARGET].load
        assert load is not None
        # Two days of history, so that the forecast is ready from the start.
        with Store(settings.store, clock) as store:
            write_history(store, load, *TARGET, start, 2.0)
        fs.attach(clock, cfg.speed)
        run = Run(
            plan,
            cluster,
            receiver,
            fs,
            disk,
            http,
            f"http://127.0.0.1:{port}",
            f"http://127.0.0.1:{api_port}",
        )
        cluster.store.listeners.append(_watch_scale(run, cluster.kinds.deployment.storage_key))
        reference = next(n for n in nodes if not any(f.node == n for f in plan.faults))

        def scraped(node: str, at: float, _: object, path: str) -> None:
            # One collection cycle, one /metrics/resource request; cAdvisor and the summary
            # API are read within some cycles too.
            if node == reference and path == "metrics/resource":
                run.scrapes.append(at)

        cluster.faults.on_kubelet_request = scraped
        cfg.progress(
            f"chaos run: seed {cfg.seed}, {cfg.duration_s / HOUR:g} simulated hours at "
            f"x{cfg.speed:g}, {len(plan.kills)} kills, {len(plan.receiver)} receiver windows, "
            f"{len(plan.faults)} simulator faults, full disk: {facts['full_disk']}"
        )
        stop = asyncio.Event()
        poller = asyncio.create_task(_poll(run, stop))
        await fs.spawn()
        real0 = time.monotonic()
        try:
            await _drive(run, cfg, start)
        finally:
            end = clock.now()
            facts["exit_code_at_stop"] = await fs.stop()
            stop.set()
            await poller
        facts["real_seconds"] = round(time.monotonic() - real0, 1)
        from alerts.notify.outbox import read_outbox  # noqa: PLC0415

        box = read_outbox(settings.rules.state_dir)
        samples = _reference_samples(data_dir, end, start)
        observed = Observed(
            start=start,
            end=end,
            incarnations=fs.incarnations,
            arrivals=receiver.arrivals,
            active_at=run.active_at,
            seen_firing=run.seen_firing,
            scale_writes=[w for w in run.scale_writes if w.name == "/".join(TARGET)],
            bounds={"/".join(TARGET): (MIN_REPLICAS, MAX_REPLICAS)},
            stale=plan.stale,
            samples=samples,
            scrapes=run.scrapes,
            pending_at_end=len(box.pending),
            dead_lettered=len(box.dead),
        )
        timing = Timing(
            scrape_s=SCRAPE_S,
            flush_s=FLUSH_S,
            eval_s=EVAL_S,
            group_wait_s=GROUP_WAIT_S,
            group_interval_s=GROUP_INTERVAL_S,
            stale_after_s=STALE_AFTER_S,
            # Accelerated time on a shared machine: a tenth of a real second of lateness.
            slack_s=0.1 * cfg.speed,
        )
        facts["receiver_refused"] = dict(receiver.refused)
        facts["disk_events"] = run.disk_events
        return account(observed, timing), plan, facts
    finally:
        await http.aclose()
        await receiver.stop()
        await cluster.stop()
        await clock.aclose()
        if disk is not None:
            disk.unmount()


def render(acc: Account, plan: Plan, facts: dict[str, Any]) -> str:
    """The account as a fixed table."""
    width = max(len(k) for k in acc.lines)
    out = [
        f"chaos run: seed {plan.seed}, {plan.duration / HOUR:g} simulated hours, "
        f"{facts.get('real_seconds', 0):g} s real; full disk: {facts['full_disk']}",
        "injected: "
        + ", ".join(f"receiver {m} x{n}" for m, n in facts.get("receiver_refused", {}).items())
        + f"; {len(plan.faults)} simulator faults (API 5xx/429/hangs, watch drops, a node "
        f"down, kubelets failing); {'; '.join(facts.get('disk_events', [])) or 'no full disk'}",
        f"{'line':<{width}}    value  target",
        f"{'-' * width}  -------  ------",
    ]
    for k, v in acc.lines.items():
        target = "0" if k in acc.loss_lines else ""
        out.append(f"{k:<{width}}  {v:>7}  {target}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hours", type=float, default=48.0, help="simulated hours [48]")
    parser.add_argument("--speed", type=float, default=100.0, help="virtual seconds per real [100]")
    parser.add_argument("--kills", type=int, default=24, help="kill -9 of foresight [24]")
    parser.add_argument("--no-disk", action="store_true", help="skip the full-disk phase")
    parser.add_argument("--work", type=Path, default=Path("chaos-run"), help="working directory")
    parser.add_argument("--json", action="store_true", help="print the account as JSON")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    cfg = ChaosConfig(
        seed=args.seed,
        duration_s=args.hours * HOUR,
        speed=args.speed,
        kills=args.kills,
        disk=not args.no_disk,
        work=args.work,
        progress=say,
    )
    acc, plan, facts = asyncio.run(run_chaos(cfg))
    if args.json:
        doc = {
            "lines": acc.lines,
            "loss_lines": list(acc.loss_lines),
            "details": acc.details,
            "plan": plan.describe(),
            "facts": facts,
        }
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    else:
        sys.stdout.write(render(acc, plan, facts) + "\n")
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 1 if any(acc.losses().values()) else 0


if __name__ == "__main__":
    sys.exit(main())
