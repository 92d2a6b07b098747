"""Simulator benchmark: API list/watch at 30,000 pods and kubelet scrapes at 1,000 nodes.

``python -m bench.simulator`` starts a simulated cluster of 1,000 nodes and 30,000 pods in a
child process (so client and server do not share a GIL), measures from this process over
loopback, and prints one table. ``--nodes`` and ``--pods`` shrink it for a quick look.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import httpx

from runtime.clock import VirtualClock
from simulator.cluster import SimulatedCluster
from simulator.objects import clone
from simulator.scenario import Scenario

PODS_PER_DEPLOYMENT = 100
SCRAPE_TARGET_SECONDS = 2.0


def bench_scenario(nodes: int, pods: int) -> Scenario:
    """``nodes`` roomy nodes and ``pods`` pods in Deployments of 100 replicas."""
    deployments = max(1, pods // PODS_PER_DEPLOYMENT)
    workloads = [
        {
            "name": f"svc-{i:04d}",
            "namespace": f"team-{i % 10}",
            "replicas": min(PODS_PER_DEPLOYMENT, pods - i * PODS_PER_DEPLOYMENT),
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "startupSeconds": 0,
            "load": {"pattern": "daily", "peak": 5.0},
        }
        for i in range(deployments)
    ]
    return Scenario.model_validate(
        {
            "name": "bench",
            "nodes": [{"name": "node", "count": nodes, "cpu": "64", "memory": "256Gi"}],
            "workloads": workloads,
        }
    )


def _serve(nodes: int, pods: int, conn: Connection) -> None:
    asyncio.run(_serve_async(nodes, pods, conn))


async def _serve_async(nodes: int, pods: int, conn: Connection) -> None:
    clock = VirtualClock(start=1_740_000_000.0, speed=None, autoadvance=False)
    began = time.perf_counter()
    cluster = SimulatedCluster(bench_scenario(nodes, pods), clock)
    await cluster.start(run_loop=False)
    await cluster.advance(60)
    setup = time.perf_counter() - began
    ports = [n.port for n in cluster.kubelets.nodes.values()]
    pod_count = cluster.store.count(cluster.kinds.pod.storage_key)
    conn.send({"url": cluster.api_url, "ports": ports, "setup": setup, "pods": pod_count})
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            break
        if command == "touch":
            # One MODIFIED event per pod, as a wave of status updates would cause.
            key, group_resource = cluster.kinds.pod.storage_key, cluster.kinds.pod.group_resource
            for stored in list(cluster.store.items(key)):
                obj = clone(stored.obj)
                obj["metadata"].setdefault("annotations", {})["bench"] = "1"
                obj["metadata"].pop("resourceVersion", None)
                cluster.store.update(key, group_resource, obj)
                if stored.rv % 1000 == 0:
                    await asyncio.sleep(0)
            conn.send("touched")
    await cluster.stop()
    await clock.aclose()


async def _list_pods(client: httpx.AsyncClient, runs: int) -> tuple[list[float], int, int]:
    times: list[float] = []
    size = items = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        response = await client.get("/api/v1/pods")
        body = response.content
        times.append(time.perf_counter() - t0)
        size = len(body)
    items = len(json.loads(body)["items"])
    return times, size, items


async def _paged_list(client: httpx.AsyncClient, limit: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    token, count = "", 0
    while True:
        params: dict[str, Any] = {"limit": limit}
        if token:
            params["continue"] = token
        doc = (await client.get("/api/v1/pods", params=params)).json()
        count += len(doc["items"])
        token = doc["metadata"].get("continue", "")
        if not token:
            return time.perf_counter() - t0, count


async def _watch_throughput(url: str, conn: Connection, expected: int) -> tuple[float, int]:
    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        rv = (await client.get("/api/v1/namespaces/default/pods")).json()["metadata"][
            "resourceVersion"
        ]
        seen = 0
        async with client.stream(
            "GET", "/api/v1/pods", params={"watch": "1", "resourceVersion": rv}
        ) as response:
            t0 = time.perf_counter()
            conn.send("touch")
            async for line in response.aiter_lines():
                if line:
                    seen += 1
                if seen >= expected:
                    break
            elapsed = time.perf_counter() - t0
        conn.recv()
    return elapsed, seen


async def _scrape_all(ports: list[int], path: str) -> tuple[float, int, int]:
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        sem = asyncio.Semaphore(200)

        async def one(port: int) -> int:
            async with sem, session.get(f"http://127.0.0.1:{port}{path}") as response:
                response.raise_for_status()
                return len(await response.read())

        t0 = time.perf_counter()
        sizes = await asyncio.gather(*(one(p) for p in ports))
        return time.perf_counter() - t0, sum(sizes), len(sizes)


async def _measure(info: dict[str, Any], conn: Connection) -> list[tuple[str, str, str]]:
    url, ports = info["url"], info["ports"]
    rows: list[tuple[str, str, str]] = []
    rows.append(
        (
            "cluster build + first minute",
            f"{info['setup']:.1f} s",
            f"{len(ports)} nodes, {info['pods']} pods",
        )
    )
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        times, size, items = await _list_pods(client, 5)
        rows.append(
            (
                "list all pods (one request)",
                f"{statistics.median(times) * 1000:.0f} ms",
                f"median of 5, {items} pods, {size / 2**20:.1f} MiB",
            )
        )
        paged, count = await _paged_list(client, 500)
        rows.append(
            (
                "list all pods (limit=500 pages)",
                f"{paged * 1000:.0f} ms",
                f"{count} pods, {(count + 499) // 500} requests",
            )
        )
        t0 = time.perf_counter()
        for _ in range(20):
            (
                await client.get(
                    "/api/v1/namespaces/team-3/pods", params={"labelSelector": "app=svc-0003"}
                )
            ).raise_for_status()
        rows.append(
            (
                "list one workload's pods",
                f"{(time.perf_counter() - t0) / 20 * 1000:.1f} ms",
                f"label selector, 100 of {items} pods",
            )
        )
    elapsed, seen = await _watch_throughput(url, conn, info["pods"])
    rows.append(
        (
            "watch throughput",
            f"{seen / elapsed:,.0f} events/s",
            f"{seen} MODIFIED events in {elapsed:.2f} s",
        )
    )
    runs = [await _scrape_all(ports, "/metrics/resource") for _ in range(3)]
    best = min(r[0] for r in runs)
    verdict = "meets" if best <= SCRAPE_TARGET_SECONDS else "MISSES"
    rows.append(
        (
            "scrape every kubelet /metrics/resource",
            f"{best:.2f} s",
            f"best of 3, {runs[0][2]} endpoints, {runs[0][1] / 2**20:.1f} MiB; "
            f"{verdict} the {SCRAPE_TARGET_SECONDS:g} s target",
        )
    )
    cadvisor = await _scrape_all(ports, "/metrics/cadvisor")
    rows.append(
        (
            "scrape every kubelet /metrics/cadvisor",
            f"{cadvisor[0]:.2f} s",
            f"{cadvisor[2]} endpoints, {cadvisor[1] / 2**20:.1f} MiB",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulator", description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=30_000)
    args = parser.parse_args(argv)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(args.nodes, args.pods, child), daemon=True)
    server.start()
    try:
        info = parent.recv()
        rows = asyncio.run(_measure(info, parent))
    finally:
        parent.send("stop")
        server.join(30)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(
        f"simulator benchmark: {args.nodes} nodes, {args.pods} pods (loopback, server in a "
        "child process)"
    )
    print(f"{'measure':<{width}}  {'result':>{value_width}}  notes")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{value_width}}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
