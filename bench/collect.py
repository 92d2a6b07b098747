"""Benchmark of one collection cycle: ``python -m bench.collect [--nodes 100 1000 5000]``.

Every kubelet's ``/metrics/resource`` is scraped, turned into rates, written to the store and
exported on ``/metrics``. The kubelets run in a child process (the other core): the simulated
cluster up to 1,000 nodes, and above that a light kubelet fleet on one port that serves the
same text format (the simulator takes minutes to build 150,000 pods). Each size runs three
cycles; the table shows the third, when every container has a rate.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import time
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from bench.simulator import bench_scenario
from collectors.cluster_model import ClusterModel
from collectors.kubelet import KubeletCollector, NodeEndpoint, kubelet_client
from collectors.scrape import ScrapeHealth, Scraper
from collectors.settings import CollectorSettings
from collectors.state_metrics import usage_families
from runtime.clock import VirtualClock
from runtime.families import FamiliesCollector, exposition
from simulator.cluster import SimulatedCluster
from tsdb import Store, StoreSettings

PODS_PER_NODE = 30
START = 1_750_000_000.0
SIMULATOR_MAX_NODES = 1_000


def _fleet_body(node: int, scrape: int) -> str:
    ts = int((START + 15 * scrape) * 1000)
    lines = [
        "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node",
        "# TYPE node_cpu_usage_seconds_total counter",
        f"node_cpu_usage_seconds_total {1000 + 15 * scrape * 3.2:.6f} {ts}",
        "# TYPE node_memory_working_set_bytes gauge",
        f"node_memory_working_set_bytes {8.2e9 + node:.6e} {ts}",
        "# TYPE container_cpu_usage_seconds_total counter",
    ]
    for p in range(PODS_PER_NODE):
        cpu = 10 + 15 * scrape * 0.1 * (1 + p % 3)
        labels = f'container="app",namespace="team-{p % 10}",pod="svc-{p:02d}-node-{node}"'
        lines.append(f"container_cpu_usage_seconds_total{{{labels}}} {cpu:.6f} {ts}")
        lines.append(f"container_memory_working_set_bytes{{{labels}}} {5.0e7 + p * 4096:.6e} {ts}")
        lines.append(f"container_start_time_seconds{{{labels}}} {START - 86_400:.9e} {ts}")
    for p in range(PODS_PER_NODE):
        cpu = 10 + 15 * scrape * 0.1 * (1 + p % 3)
        labels = f'namespace="team-{p % 10}",pod="svc-{p:02d}-node-{node}"'
        lines.append(f"pod_cpu_usage_seconds_total{{{labels}}} {cpu:.6f} {ts}")
        lines.append(f"pod_memory_working_set_bytes{{{labels}}} {5.1e7 + p * 4096:.6e} {ts}")
    return "\n".join(lines) + "\n"


async def _serve_fleet(nodes: int, conn: Connection) -> None:
    scrapes: dict[int, int] = {}

    async def handle(request: web.Request) -> web.Response:
        node = int(request.match_info["node"].removeprefix("node-"))
        scrapes[node] = scrapes.get(node, -1) + 1
        return web.Response(text=_fleet_body(node, scrapes[node]))

    app = web.Application()
    app.router.add_get("/api/v1/nodes/{node}/proxy/metrics/resource", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    endpoints = [(f"node-{i}", (("InternalIP", "127.0.0.1"),), None) for i in range(nodes)]
    conn.send({"api": f"http://127.0.0.1:{port}", "nodes": endpoints, "source": "kubelet fleet"})
    await _wait_stop(conn)
    await runner.cleanup()


async def _serve_simulator(nodes: int, conn: Connection) -> None:
    clock = VirtualClock(start=START, speed=None, autoadvance=False)
    cluster = SimulatedCluster(bench_scenario(nodes, nodes * PODS_PER_NODE), clock)
    await cluster.start(run_loop=False)
    await cluster.advance(60)
    endpoints = [
        (n.name, (("InternalIP", "127.0.0.1"),), n.port) for n in cluster.kubelets.nodes.values()
    ]
    conn.send({"api": None, "nodes": endpoints, "source": "simulator"})
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            break
        await cluster.advance(15)
        conn.send("advanced")
    await cluster.stop()
    await clock.aclose()


async def _wait_stop(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            return
        conn.send("advanced")


def _child(nodes: int, conn: Connection) -> None:
    serve = _serve_simulator if nodes <= SIMULATOR_MAX_NODES else _serve_fleet
    asyncio.run(serve(nodes, conn))


async def _measure(nodes: int, info: dict[str, Any], conn: Connection) -> dict[str, Any]:
    clock = VirtualClock(start=START + 60, autoadvance=False)
    proxy = info["api"] is not None
    settings = CollectorSettings(
        kubelet_scheme="http",
        kubelet_via_proxy=proxy,
        stagger_seconds=0,
        token_file=None,
        ca_file=None,
        concurrency=64,
    )
    endpoints = [NodeEndpoint(name, addresses, port) for name, addresses, port in info["nodes"]]
    store = Store(StoreSettings(), clock, persistent=False)
    health = ScrapeHealth("kubelet")
    async with kubelet_client(settings) as client:
        scraper = Scraper(
            client,
            clock,
            health,
            concurrency=settings.concurrency,
            timeout_s=30,
            stagger_s=0,
            max_bytes=settings.max_response_bytes,
            backoff_initial_s=5,
            backoff_max_s=60,
        )
        collector = KubeletCollector(
            scraper, store, clock, settings, lambda: endpoints, api_server=info["api"], headers=dict
        )
        registry = CollectorRegistry()
        model = ClusterModel()
        registry.register(FamiliesCollector(lambda: usage_families(collector.latest, model)))
        for cycle in range(3):
            wall = time.perf_counter()
            cpu = time.process_time()
            samples = await collector.collect()
            collect_wall = time.perf_counter() - wall
            export_start = time.perf_counter()
            text = exposition(registry)
            export_wall = time.perf_counter() - export_start
            cpu_used = time.process_time() - cpu
            if cycle < 2:
                clock.advance(15)
                conn.send("advance")
                conn.recv()
    store.close()
    return {
        "nodes": nodes,
        "pods": nodes * PODS_PER_NODE,
        "source": info["source"],
        "samples": samples,
        "errors": sum(health.errors.values()),
        "collect_s": collect_wall,
        "export_s": export_wall,
        "cpu_per_1k": cpu_used / samples * 1000 if samples else float("nan"),
        "exposition_mib": len(text) / 2**20,
    }


def run(sizes: list[int]) -> list[dict[str, Any]]:
    """Measure one cycle per cluster size."""
    rows = []
    ctx = multiprocessing.get_context("spawn")
    for nodes in sizes:
        print(f"{nodes:,} nodes x {PODS_PER_NODE} pods: starting the kubelets ...", flush=True)
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_child, args=(nodes, child), daemon=True)
        proc.start()
        try:
            info = parent.recv()
            print(f"  collecting from the {info['source']} ...", flush=True)
            rows.append(asyncio.run(_measure(nodes, info, parent)))
        finally:
            parent.send("stop")
            proc.join(timeout=120)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.collect", description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="+", default=[100, 1_000, 5_000])
    args = parser.parse_args()
    rows = run(args.nodes)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(
        f"{'nodes':>6} {'pods':>8} {'samples':>8} {'errors':>6} {'collect s':>10} {'export s':>9} "
        f"{'CPU s/1k samples':>17} {'/metrics MiB':>12}  kubelets"
    )
    for r in rows:
        print(
            f"{r['nodes']:>6,} {r['pods']:>8,} {r['samples']:>8,} {r['errors']:>6} "
            f"{r['collect_s']:>10.2f} {r['export_s']:>9.2f} {r['cpu_per_1k']:>17.4f} "
            f"{r['exposition_mib']:>12.1f}  {r['source']}"
        )
    print(
        f"\npeak RSS of the collecting process: {peak:,.0f} MiB; "
        "goal: 5,000 nodes within 15 s on one core"
    )


if __name__ == "__main__":
    main()
