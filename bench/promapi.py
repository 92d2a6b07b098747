"""Benchmark of the Prometheus HTTP API: ``python -m bench.promapi [--nodes N] [--json]``.

Every panel query of the six dashboards (``dashboards.build_all()``), refreshed together as
Grafana does when all six are open, sent over HTTP to foresight's query API the way Grafana's
Prometheus data source sends them: a form POST to ``/api/v1/query_range`` (``/api/v1/query``
for instant targets), variables at "All", ``$__rate_interval`` for a data source whose scrape
interval is the store's, the time range the dashboards open with (``--hours``).

The store holds a synthetic cluster of ``--nodes`` nodes with ``--pods-per-node`` pods
(Deployments of 30 replicas, one pod in three with a sidecar, ten namespaces), written by
foresight's own metric families, so that every label and join is the one production writes:
the collectors' cluster and usage families, the cost families, the controller's families
for one autoscaler per ten Deployments, and the alert engine's alert and notification
counts. ``--hours`` of scrapes every ``--scrape`` seconds: usage moves, counters grow, states
hold.

The server runs in a child process (one core), the client here (the other): the figures are
the server's. A round sends every query at once, ``--connections`` at a time, as browsers
holding several dashboards open do. The first round is the first load; then ``--rounds``
refreshes, each after one more scrape has landed, with the time range moved by one scrape,
as Grafana's auto-refresh at the scrape interval does (so the API's results cache, see
``--cache-mib``, keeps what it may keep and no more). Latency is from send to the last byte,
queueing in the API included; the answers (some 80 MB a refresh at 1,000 nodes) are parsed
only once the round is over, as a browser's tabs would parse them, not by the one process
that receives them all. The server's CPU time per round is what answering cost it, whatever
else the machine runs; the client's is shown beside it, since the two share the machine.
Target: p99 <= 1 s over the refreshes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import httpx
import numpy as np
from aiohttp import web

import dashboards
from alerts.notify.delivery import OUTCOMES
from autoscaler.controller.controller import Snapshot, autoscaler_families
from autoscaler.cost.exporter import cost_families
from autoscaler.cost.inputs import snapshot_from_cluster
from autoscaler.cost.settings import CostSettings
from collectors.cluster_model import ClusterModel
from collectors.kubelet import NodeUsageView
from collectors.state_metrics import cluster_families, usage_families
from dashboards.lint import fill, panels
from promql import Engine
from queryapi import QueryApi, QueryApiSettings
from runtime import names
from runtime.clock import VirtualClock
from runtime.families import Family
from tsdb import Store, StoreSettings
from tsdb.labels import make_labels

T0_S = 1_750_000_000
NAMESPACES = 10
REPLICAS = 30
TARGET_P99_S = 1.0


@dataclass(frozen=True)
class PanelQuery:
    """One target of a dashboard panel, its variables filled."""

    dashboard: str
    panel: str
    expr: str
    instant: bool


def panel_queries(scrape_s: float, step_s: float, range_s: float) -> list[PanelQuery]:
    """Every panel target of the six dashboards with its variables at "All" and Grafana's
    built-in intervals for a data source scraped every ``scrape_s`` seconds."""
    rate_interval = max(step_s + scrape_s, 4 * scrape_s)
    builtins = {
        "__rate_interval": f"{rate_interval:g}s",
        "__interval": f"{step_s:g}s",
        "__range": f"{range_s:g}s",
        "__range_s": f"{range_s:g}",
    }
    out = []
    for name, dashboard in dashboards.build_all().items():
        defined = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
        values = {**builtins, **dict.fromkeys(defined, ".*")}
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append(
                        PanelQuery(
                            name.removeprefix("foresight-").removesuffix(".json"),
                            str(panel.get("title", "")),
                            fill(target["expr"], values),
                            bool(target.get("instant")),
                        )
                    )
    return out


# -- the synthetic cluster, through foresight's own families ---------------------------------


def _node(i: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"node-{i:04d}",
            "labels": {
                "node.kubernetes.io/instance-type": "m5.2xlarge" if i % 4 else "c5.4xlarge",
                "topology.kubernetes.io/zone": f"zone-{'abc'[i % 3]}",
            },
        },
        "status": {
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "allocatable": {"cpu": "15800m", "memory": "62Gi", "pods": "110"},
            "conditions": [
                {"type": "Ready", "status": "True" if i % 250 else "False"},
                {"type": "MemoryPressure", "status": "False"},
                {"type": "DiskPressure", "status": "False"},
            ],
        },
    }


def _owned(kind: str, name: str) -> list[dict[str, Any]]:
    return [{"kind": kind, "name": name, "controller": True}]


def _container(name: str, cpu: str, memory: str) -> dict[str, Any]:
    return {
        "name": name,
        "resources": {
            "requests": {"cpu": cpu, "memory": memory},
            "limits": {"memory": memory},
        },
    }


def cluster_model(nodes: int, pods_per_node: int) -> ClusterModel:
    """Nodes, Deployments with their ReplicaSets, and their pods spread over the nodes."""
    model = ClusterModel()
    model.replace("Node", (_node(i) for i in range(nodes)))
    pods, deployments, replica_sets = [], [], []
    total = nodes * pods_per_node
    for d in range((total + REPLICAS - 1) // REPLICAS):
        ns, name = f"team-{d % NAMESPACES}", f"svc-{d:04d}"
        replicas = min(REPLICAS, total - d * REPLICAS)
        deployments.append(
            {
                "metadata": {"name": name, "namespace": ns},
                "spec": {"replicas": replicas},
                "status": {
                    "readyReplicas": replicas,
                    "availableReplicas": replicas,
                    "updatedReplicas": replicas,
                },
            }
        )
        rs = f"{name}-7d9f8"
        replica_sets.append(
            {
                "metadata": {
                    "name": rs,
                    "namespace": ns,
                    "ownerReferences": _owned("Deployment", name),
                },
                "spec": {"replicas": replicas},
            }
        )
        for r in range(replicas):
            k = d * REPLICAS + r
            containers = [_container("app", "250m", "512Mi")]
            if k % 3 == 0:
                containers.append(_container("proxy", "50m", "64Mi"))
            phase = "Pending" if k % 997 == 0 else "Running"
            pods.append(
                {
                    "metadata": {
                        "name": f"{rs}-{r:05d}",
                        "namespace": ns,
                        "uid": f"uid-{k}",
                        "ownerReferences": _owned("ReplicaSet", rs),
                    },
                    "spec": {"nodeName": f"node-{k % nodes:04d}", "containers": containers},
                    "status": {
                        "phase": phase,
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "containerStatuses": [
                            {"name": c["name"], "restartCount": k % 7 == 0, "ready": True}
                            for c in containers
                        ],
                    },
                }
            )
    model.replace("Deployment", deployments)
    model.replace("ReplicaSet", replica_sets)
    model.replace("Pod", pods)
    return model


def usage(model: ClusterModel, rng: np.random.Generator) -> dict[str, NodeUsageView]:
    """A kubelet scrape of every node: each container at some share of its request."""
    views = {n.name: NodeUsageView(T0_S * 1000, 0.0, 0.0) for n in model.nodes()}
    for pod in model.pods():
        view = views.get(pod.node)
        if view is None or pod.phase != "Running":
            continue
        pod_cpu = pod_mem = 0.0
        for c in pod.containers:
            cpu = c.requests.get("cpu", 0.1) * float(rng.uniform(0.2, 1.5))
            mem = c.requests.get("memory", 1e8) * float(rng.uniform(0.3, 1.1))
            view.containers[(pod.namespace, pod.name, c.name)] = (cpu, mem)
            pod_cpu, pod_mem = pod_cpu + cpu, pod_mem + mem
        view.pods[(pod.namespace, pod.name)] = (pod_cpu, pod_mem)
        view.node_cpu_cores = (view.node_cpu_cores or 0.0) + pod_cpu
        view.node_memory_bytes = (view.node_memory_bytes or 0.0) + pod_mem
    return views


def _autoscalers(model: ClusterModel) -> list[Snapshot]:
    out = []
    for i, w in enumerate(model.workloads("Deployment")):
        if i % 10:
            continue
        out.append(
            Snapshot(
                w.namespace,
                w.name,
                "Deployment",
                w.name,
                "Auto",
                load=3.0,
                forecast=4.0,
                quantile=0.997,
                current=w.desired,
                desired=w.desired,
                min_replicas=2,
                max_replicas=60,
                forecast_error=0.1,
                recommendations={("app", "cpu"): 0.3, ("app", "memory"): 6e8},
                conditions={"ForecastReady": "True", "AbleToScale": "True"},
            )
        )
    return out


def _alerts() -> list[Family]:
    alerts = Family(names.ALERTS, "gauge", "Pending and firing alerts.")
    for name, severity in (("NodeNotReady", "critical"), ("PodCrashLooping", "warning")):
        for state in ("pending", "firing"):
            alerts.add(2, alertname=name, severity=severity, state=state)
    sent = Family(names.NOTIFICATIONS, "counter", "Notification attempts by outcome.")
    outbox = Family(names.NOTIFICATION_OUTBOX_SIZE, "gauge", "Notifications queued.")
    for receiver in ("team", "oncall"):
        for outcome in OUTCOMES:
            sent.add(10, receiver=receiver, outcome=outcome)
        outbox.add(0, receiver=receiver)
    leader = Family(names.LEADER, "gauge", "1 on the replica that acts.")
    leader.add(1, identity="foresight-0")
    return [alerts, sent, outbox, leader]


def families(model: ClusterModel, rng: np.random.Generator) -> list[Family]:
    """Everything the service writes to its store in one cycle, for this cluster."""
    latest = usage(model, rng)
    snapshot = snapshot_from_cluster(model, latest, CostSettings())
    decisions = {(s.namespace, s.name, "up", "forecast"): 3 for s in _autoscalers(model)}
    return [
        *cluster_families(model),
        *usage_families(latest, model),
        *cost_families(snapshot, CostSettings()),
        *autoscaler_families(_autoscalers(model), decisions),
        *_alerts(),
    ]


class SyntheticScrapes:
    """The families of one cycle written every ``scrape_s`` seconds: usage gauges move by a
    few percent, counters grow, states hold. :meth:`append` writes scrape ``k``."""

    def __init__(self, store: Store, model: ClusterModel, scrape_s: float) -> None:
        self.store = store
        self.scrape_s = scrape_s
        rng = np.random.default_rng(1)
        refs, base, kinds = [], [], []
        moving = {
            names.NODE_CPU_CORES,
            names.POD_CPU_CORES,
            names.CONTAINER_CPU_CORES,
            names.WORKLOAD_CPU_CORES,
            names.COST_HOURLY,
            names.AUTOSCALER_LOAD,
        }
        for family in families(model, rng):
            name = family.sample_name
            kind = 2 if family.kind == "counter" else 1 if family.name in moving else 0
            for labels, value in family.samples:
                refs.append(store.ref(make_labels({**labels, "__name__": name})))
                base.append(value)
                kinds.append(kind)
        self.ids = np.array(refs, dtype=np.int32)
        self._level, self._kind = np.array(base), np.array(kinds)
        self._phase = np.arange(len(self.ids))

    def time_ms(self, k: int) -> int:
        """When scrape ``k`` is stamped."""
        return int((T0_S + k * self.scrape_s) * 1000)

    def append(self, k: int) -> None:
        """Write scrape ``k``."""
        level, kind = self._level, self._kind
        wobble = 1 + 0.05 * np.sin(k / 20 + self._phase % 97)
        values = np.where(kind == 1, level * wobble, level)
        values = np.where(kind == 2, level + k * 0.01 * (self._phase % 5), values)
        self.store.append_batch(self.ids, self.time_ms(k), values)


def build_store(
    nodes: int, pods_per_node: int, hours: float, scrape_s: float
) -> tuple[Store, SyntheticScrapes, int]:
    """The store, its writer and the number of scrapes written: ``hours`` of them."""
    model = cluster_model(nodes, pods_per_node)
    store = Store(StoreSettings(max_series=10_000_000), VirtualClock(T0_S), persistent=False)
    scrapes = SyntheticScrapes(store, model, scrape_s)
    count = max(1, round(hours * 3600 / scrape_s))
    for k in range(count):
        scrapes.append(k)
    store.maintain()
    return store, scrapes, count


# -- server (child process) and client ------------------------------------------------------


def _serve(args: dict[str, Any], conn: Connection) -> None:
    asyncio.run(_serve_async(args, conn))


async def _serve_async(args: dict[str, Any], conn: Connection) -> None:
    started = time.perf_counter()
    store, scrapes, count = build_store(
        args["nodes"], args["pods_per_node"], args["hours"], args["scrape"]
    )
    built = time.perf_counter() - started
    stats = store.stats()
    end_ms = scrapes.time_ms(count - 1)
    clock = VirtualClock(end_ms / 1000)
    settings = QueryApiSettings(
        max_concurrent_queries=args["concurrency"], results_cache_mib=args["cache_mib"]
    )
    api = QueryApi(Engine(store), store, settings, clock)
    app = web.Application()
    app.add_routes(api.routes())
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    conn.send(
        {
            "url": f"http://127.0.0.1:{port}",
            "end_ms": end_ms,
            "series": stats.series,
            "samples": stats.head_samples + stats.block_samples,
            "built_s": built,
        }
    )
    ready_cpu = time.process_time()
    loop = asyncio.get_running_loop()
    # Between rounds the next scrape lands and time moves on by one scrape interval; every
    # reply tells what answering has cost the server so far, free of what else the machine
    # runs meanwhile (the scrape itself not counted).
    while await loop.run_in_executor(None, conn.recv) == "scrape":
        conn.send(time.process_time() - ready_cpu)
        scraped = time.process_time()
        scrapes.append(count)
        count += 1
        clock.advance(args["scrape"])
        ready_cpu += time.process_time() - scraped
    conn.send(time.process_time() - ready_cpu)
    cache = api.cache
    conn.send({"hits": cache.hits, "misses": cache.misses, "mib": cache.nbytes / 2**20})
    await runner.cleanup()
    api.close()
    store.close()


@dataclass
class Sample:
    """One request's outcome."""

    query: PanelQuery
    seconds: float
    status: int
    series: int


async def _send(
    client: httpx.AsyncClient, q: PanelQuery, window: dict[str, str], gate: asyncio.Semaphore
) -> tuple[PanelQuery, float, httpx.Response]:
    path = "/api/v1/query" if q.instant else "/api/v1/query_range"
    form = {"query": q.expr, "time": window["end"]} if q.instant else {"query": q.expr, **window}
    async with gate:
        start = time.perf_counter()
        response = await client.post(path, data=form)
        took = time.perf_counter() - start
    return q, took, response


def _sample(q: PanelQuery, took: float, response: httpx.Response) -> Sample:
    """A request's outcome; its body is read once the round is over, so that reading one
    answer (tens of megabytes a round) does not hold up receiving the others."""
    body = response.json() if response.status_code == 200 else {}
    series = len(body.get("data", {}).get("result", [])) if body else 0
    return Sample(q, took, response.status_code, series)


@dataclass
class Round:
    """One refresh of the six dashboards: its requests, wall time, the server's CPU and the
    client's (sending and receiving, the answers not read)."""

    samples: list[Sample]
    wall_s: float
    cpu_s: float
    client_cpu_s: float


async def _rounds(
    url: str,
    queries: list[PanelQuery],
    args: argparse.Namespace,
    end_s: int,
    server: Connection,
) -> tuple[list[Round], dict[str, float]]:
    """The first load, then ``args.rounds`` refreshes, each one scrape later with the time
    range moved by one scrape, as Grafana's auto-refresh at the scrape interval does."""
    gate = asyncio.Semaphore(args.connections)
    limits = httpx.Limits(max_connections=args.connections)
    step = args.step or args.scrape
    out: list[Round] = []
    cpu = 0.0
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        for r in range(args.rounds + 1):
            if r:
                server.send("scrape")
                cpu_now = server.recv()
                out[-1].cpu_s, cpu = cpu_now - cpu, cpu_now
            end = end_s + round(r * args.scrape)
            window = {
                "start": str(end - int(args.hours * 3600)),
                "end": str(end),
                "step": f"{step:g}",
            }
            start, client_cpu = time.perf_counter(), time.process_time()
            got = await asyncio.gather(*(_send(client, q, window, gate) for q in queries))
            wall, client_cpu = time.perf_counter() - start, time.process_time() - client_cpu
            samples = [_sample(*g) for g in got]
            out.append(Round(samples, wall, float("nan"), client_cpu))
    server.send("stop")
    out[-1].cpu_s = server.recv() - cpu
    return out, server.recv()


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the store in a child, time the rounds, return the figures."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    settings = {
        "nodes": args.nodes,
        "pods_per_node": args.pods_per_node,
        "hours": args.hours,
        "scrape": args.scrape,
        "concurrency": args.concurrency,
        "cache_mib": args.cache_mib,
    }
    proc = ctx.Process(target=_serve, args=(settings, child), daemon=True)
    proc.start()
    try:
        info = parent.recv()
        step = args.step or args.scrape
        queries = panel_queries(args.scrape, step, args.hours * 3600)
        rounds, info["cache"] = asyncio.run(
            _rounds(info["url"], queries, args, info["end_ms"] // 1000, parent)
        )
    finally:
        proc.join(timeout=120)
        if proc.is_alive():
            proc.kill()
    return _figures(args, info, queries, rounds)


def _latencies(rounds: list[Round]) -> dict[str, float]:
    seconds = [s.seconds for r in rounds for s in r.samples]
    walls = [r.wall_s for r in rounds]
    return {
        "requests_per_s": len(seconds) / sum(walls) if walls else float("nan"),
        "p50_s": _percentile(seconds, 50),
        "p99_s": _percentile(seconds, 99),
        "max_s": max(seconds, default=float("nan")),
        "errors": sum(s.status != 200 for r in rounds for s in r.samples),
        "round_s": max(walls, default=float("nan")),
        "server_cpu_s_per_round": float(np.mean([r.cpu_s for r in rounds])),
        "client_cpu_s_per_round": float(np.mean([r.client_cpu_s for r in rounds])),
    }


def _figures(
    args: argparse.Namespace,
    info: dict[str, Any],
    queries: list[PanelQuery],
    rounds: list[Round],
) -> dict[str, Any]:
    refreshes = rounds[1:]
    samples = [s for r in refreshes for s in r.samples]
    by_dashboard: dict[str, list[float]] = {}
    for s in samples:
        by_dashboard.setdefault(s.query.dashboard, []).append(s.seconds)
    slowest: dict[str, Sample] = {}
    for s in samples:
        key = f"{s.query.dashboard}: {s.query.panel}"
        if key not in slowest or s.seconds > slowest[key].seconds:
            slowest[key] = s
    refreshed = _latencies(refreshes)
    return {
        "nodes": args.nodes,
        "pods": args.nodes * args.pods_per_node,
        "series": info["series"],
        "samples": info["samples"],
        "store_built_s": info["built_s"],
        "hours": args.hours,
        "step_s": args.step or args.scrape,
        "queries_per_round": len(queries),
        "rounds": len(refreshes),
        "connections": args.connections,
        "max_concurrent_queries": args.concurrency,
        "results_cache_mib": args.cache_mib,
        # Range queries only; what the cache holds after the last refresh.
        "results_cache": info["cache"],
        **refreshed,
        "first_load": _latencies(rounds[:1]),
        "target_p99_s": TARGET_P99_S,
        "meets_target": refreshed["p99_s"] <= TARGET_P99_S,
        "dashboards": {
            name: {"p50_s": _percentile(v, 50), "p99_s": _percentile(v, 99), "queries": len(v)}
            for name, v in by_dashboard.items()
        },
        "slowest": [
            {"panel": key, "seconds": s.seconds, "series": s.series, "status": s.status}
            for key, s in sorted(slowest.items(), key=lambda kv: -kv[1].seconds)[:10]
        ],
    }


def _table(f: dict[str, Any]) -> Iterator[str]:
    yield f"{'cluster':<34} {f['nodes']:,} nodes, {f['pods']:,} pods"
    yield (
        f"{'store':<34} {f['series']:,} series, {f['samples']:,} samples "
        f"({f['store_built_s']:.0f} s to build)"
    )
    yield (
        f"{'dashboards':<34} 6, {f['queries_per_round']} panel queries over {f['hours']:g} h, "
        f"step {f['step_s']:g} s"
    )
    yield (
        f"{'client':<34} {f['connections']} connections; API: {f['max_concurrent_queries']} "
        f"queries at once; results cache {f['results_cache_mib']} MiB"
    )
    yield ""
    yield (
        f"{'':<34} {'req/s':>8} {'p50 s':>8} {'p99 s':>8} {'max s':>8} {'errors':>7} {'CPU s':>7}"
        f" {'client':>7}"
    )
    first = f["first_load"]
    for title, d in (
        ("first load of all six", first),
        (f"refreshed together (x{f['rounds']})", f),
    ):
        yield (
            f"{title:<34} {d['requests_per_s']:>8.1f} {d['p50_s']:>8.3f} {d['p99_s']:>8.3f} "
            f"{d['max_s']:>8.3f} {d['errors']:>7} {d['server_cpu_s_per_round']:>7.2f}"
            f" {d['client_cpu_s_per_round']:>7.2f}"
        )
    for name, d in f["dashboards"].items():
        yield f"{'  ' + name:<34} {'':>8} {d['p50_s']:>8.3f} {d['p99_s']:>8.3f}"
    verdict = "met" if f["meets_target"] else "NOT met"
    yield f"target p99 <= {f['target_p99_s']:g} s: {verdict}"
    yield ""
    cache = f["results_cache"]
    yield (
        f"{'results cache':<34} {cache['hits']:,} hits, {cache['misses']:,} misses, "
        f"{cache['mib']:.0f} MiB held"
    )
    yield ""
    yield f"{'slowest panels (worst refresh)':<60} {'seconds':>8} {'series':>7}"
    for s in f["slowest"]:
        yield f"{s['panel'][:60]:<60} {s['seconds']:>8.3f} {s['series']:>7,}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.promapi", description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument("--hours", type=float, default=1.0, help="dashboard time range")
    parser.add_argument("--scrape", type=float, default=30.0, help="seconds between scrapes")
    parser.add_argument("--step", type=float, default=None, help="query step (default: scrape)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=12, help="client connections")
    parser.add_argument("--concurrency", type=int, default=4, help="the API's concurrent queries")
    parser.add_argument(
        "--cache-mib", type=int, default=256, help="the API's results cache (0: none)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = run(args)
    if args.json:
        json.dump(figures, sys.stdout, indent=2)
        print()
    else:
        print("\n".join(_table(figures)))


if __name__ == "__main__":
    main()
