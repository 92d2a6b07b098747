"""Benchmark of one collection cycle: ``python -m bench.collect [--nodes 100 1000 5000]
[--stats-nodes 1000 5000]``.

Every kubelet's ``/metrics/resource`` is scraped, turned into rates, written to the store and
exported on ``/metrics``. The kubelets run in a child process (the other core): the simulated
cluster up to 1,000 nodes, and above that a light kubelet fleet on one port that serves the
same text format (the simulator takes minutes to build 150,000 pods). Each size runs three
cycles; the table shows the third, when every container has a rate.

The second table is a full cycle with cAdvisor and the summary API (``--stats-nodes``): each
kubelet of the fleet also serves ``/metrics/cadvisor`` and ``/stats/summary`` scaled from the
shared real kubelet payloads (Kubernetes 1.35, ``$FORESIGHT_TEST_DATA/k8s/nri-kubernetes-1_35``):
the node's own rows as they are, and one real pod's rows (its cgroup, its sandbox with the ten
interfaces of that kernel, its container; 234 lines of cAdvisor) repeated for each of the
node's 30 pods under their names. The metric paths answer as Go's Prometheus handler
(promhttp) does, chunked and gzip when the request accepts it (the collectors ask for it);
the summary is plain JSON. Each size runs three cycles, all three collectors due in each,
and freezes what each cycle left as the service does; the table shows the third, and the
CPU time of the first (every series new).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import json
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
from collectors.kubelet_stats import CadvisorCollector, SummaryCollector
from collectors.scrape import ScrapeHealth, Scraper
from collectors.settings import CollectorSettings
from collectors.state_metrics import usage_families
from runtime.clock import VirtualClock
from runtime.families import FamiliesCollector, exposition
from runtime.gcpause import freeze_long_lived
from simulator.cluster import SimulatedCluster
from simulator.kubelet_http import PROMETHEUS_TEXT
from tests.support.external import data_root
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


# The real pod whose rows stand for every pod of a fleet node: a Deployment's pod with a CPU
# limit (its throttling counters are there), one container, and the fixture's names for it.
FIXTURE_DIR = "k8s/nri-kubernetes-1_35"
TEMPLATE_POD = "e2e-deployment-79967c5968-zjslc"
TEMPLATE_NAMESPACE = "scraper"
TEMPLATE_UID = "4aa017de-86c6-41cd-b4ad-21b66575685c"
NODE_MARK = "@NODE@"


def _pod_name(p: int, node: object) -> str:
    return f"svc-{p:02d}-node-{node}"


def _cadvisor_parts() -> list[str]:
    """The fleet's ``/metrics/cadvisor``, split where the node's number goes."""
    text = (data_root() / FIXTURE_DIR / "kubelet_metrics_cadvisor").read_text(encoding="utf-8")
    out: list[str] = []
    mine = f'pod="{TEMPLATE_POD}"'
    for line in text.splitlines():
        if line.startswith("#") or 'pod=""' in line:
            out.append(line)
        elif mine in line:
            for p in range(PODS_PER_NODE):
                out.append(_as_pod(line, p))
    return ("\n".join(out).replace("@@", NODE_MARK) + "\n").split(NODE_MARK)


def _as_pod(text: str, p: int) -> str:
    """The template pod's text as pod ``p`` of a node: its name, namespace, uid and container
    ids (the first hex digits stand for the pod; "@@" for the node)."""
    text = text.replace(TEMPLATE_POD, _pod_name(p, "@@"))
    text = text.replace(f'namespace="{TEMPLATE_NAMESPACE}"', f'namespace="team-{p % 10}"')
    text = text.replace(TEMPLATE_UID, f"{p:08x}-@@-4000-8000-000000000000")
    for cid in ("731f82ea2a7e4d3f66190f2986cbe844", "5d8fb4b3db861f571c6a1a9de6bf86cb"):
        text = text.replace(cid, f"{p:02x}{cid[2:]}")
    return text


def _summary_parts() -> list[str]:
    """The fleet's ``/stats/summary``, split where the node's number goes."""
    path = data_root() / FIXTURE_DIR / "kubelet_stats_summary"
    doc = json.loads(path.read_text(encoding="utf-8"))
    [template] = [p for p in doc["pods"] if p["podRef"]["name"] == TEMPLATE_POD]
    text = json.dumps(template)
    pods = [
        json.loads(_as_pod(text, p).replace(TEMPLATE_NAMESPACE, f"team-{p % 10}"))
        for p in range(PODS_PER_NODE)
    ]
    doc["node"]["nodeName"] = "node-@@"
    doc["pods"] = pods
    return json.dumps(doc).replace("@@", NODE_MARK).split(NODE_MARK)


async def _serve_fleet(nodes: int, conn: Connection) -> None:
    scrapes: dict[int, int] = {}
    cadvisor = _cadvisor_parts()
    summary = _summary_parts()

    cadvisor_gzip: dict[str, bytes] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        node = int(request.match_info["node"].removeprefix("node-"))
        scrapes[node] = scrapes.get(node, -1) + 1
        return await _promhttp(request, _fleet_body(node, scrapes[node]).encode())

    async def handle_cadvisor(request: web.Request) -> web.StreamResponse:
        node = request.match_info["node"].removeprefix("node-")
        body = node.join(cadvisor).encode()
        if not _accepts_gzip(request):
            return await _promhttp(request, body)
        # The same text every time (values included): compressed once per node.
        compressed = cadvisor_gzip.get(node)
        if compressed is None:
            compressed = cadvisor_gzip[node] = gzip.compress(body, GO_GZIP_LEVEL, mtime=0)
        return await _promhttp(request, body, compressed)

    async def handle_summary(request: web.Request) -> web.Response:
        node = request.match_info["node"].removeprefix("node-")
        return web.Response(text=node.join(summary), content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/nodes/{node}/proxy/metrics/resource", handle)
    app.router.add_get("/api/v1/nodes/{node}/proxy/metrics/cadvisor", handle_cadvisor)
    app.router.add_get("/api/v1/nodes/{node}/proxy/stats/summary", handle_summary)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    endpoints = [(f"node-{i}", (("InternalIP", "127.0.0.1"),), None) for i in range(nodes)]
    conn.send({"api": f"http://127.0.0.1:{port}", "nodes": endpoints, "source": "kubelet fleet"})
    await _wait_stop(conn)
    await runner.cleanup()


# Go's net/http sends a streamed response in chunks of what each write flushes: Prometheus'
# text encoder flushes every 4 KiB, its gzip writer's output goes through 2 KiB.
GO_TEXT_CHUNK = 4096
GO_GZIP_CHUNK = 2048
# compress/gzip's default level, which Go's Prometheus handler uses.
GO_GZIP_LEVEL = 6


def _accepts_gzip(request: web.Request) -> bool:
    offered = request.headers.get("Accept-Encoding", "")
    return "gzip" in (part.split(";")[0].strip() for part in offered.split(","))


async def _promhttp(
    request: web.Request, body: bytes, compressed: bytes | None = None
) -> web.StreamResponse:
    """``body`` as a kubelet's Prometheus handler (Go's promhttp) sends it: chunked, and
    gzip (``compressed``, or compressed here) when the request accepts it."""
    response = web.StreamResponse(headers={"Content-Type": PROMETHEUS_TEXT})
    response.enable_chunked_encoding()
    chunk = GO_TEXT_CHUNK
    if _accepts_gzip(request):
        response.headers["Content-Encoding"] = "gzip"
        body = compressed or gzip.compress(body, GO_GZIP_LEVEL, mtime=0)
        chunk = GO_GZIP_CHUNK
    await response.prepare(request)
    for at in range(0, len(body), chunk):
        await response.write(body[at : at + chunk])
    await response.write_eof()
    return response


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


def _child(nodes: int, conn: Connection, fleet: bool = False) -> None:
    serve = _serve_simulator if nodes <= SIMULATOR_MAX_NODES and not fleet else _serve_fleet
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


async def _measure_stats(nodes: int, info: dict[str, Any], conn: Connection) -> dict[str, Any]:
    """Three full cycles (resource, cAdvisor, summary) of the fleet; figures of the third."""
    clock = VirtualClock(start=START + 60, autoadvance=False)
    settings = CollectorSettings(
        kubelet_scheme="http",
        kubelet_via_proxy=True,
        stagger_seconds=0,
        token_file=None,
        ca_file=None,
        concurrency=64,
        max_response_bytes=64 * 2**20,
    )
    endpoints = [NodeEndpoint(name, addresses, port) for name, addresses, port in info["nodes"]]
    # cAdvisor at 5,000 nodes is over 3 M series: past the store's default limit of 2 M.
    store = Store(StoreSettings(max_series=20_000_000), clock, persistent=False)
    figures: dict[str, Any] = {}
    healths: list[ScrapeHealth] = []
    async with kubelet_client(settings) as client:

        def scraper(job: str) -> Scraper:
            healths.append(ScrapeHealth(job))
            return Scraper(
                client,
                clock,
                healths[-1],
                concurrency=settings.concurrency,
                timeout_s=60,
                stagger_s=0,
                max_bytes=settings.max_response_bytes,
                backoff_initial_s=5,
                backoff_max_s=60,
            )

        common = (store, clock, settings, lambda: endpoints)
        resource = KubeletCollector(
            scraper("kubelet"), *common, api_server=info["api"], headers=dict
        )
        cadvisor = CadvisorCollector(
            scraper("cadvisor"), *common, settings.cadvisor_interval_seconds, info["api"], dict
        )
        summary = SummaryCollector(
            scraper("summary"), *common, settings.summary_interval_seconds, info["api"], dict
        )
        for cycle in range(3):
            for name, collect in (
                ("resource", resource.collect),
                ("cadvisor", cadvisor.collect),
                ("summary", summary.collect),
            ):
                wall = time.perf_counter()
                cpu = time.process_time()
                with GcTime() as collections:
                    figures[f"{name}_samples"] = await collect()
                figures[f"{name}_s"] = time.perf_counter() - wall
                figures[f"{name}_cpu_s"] = time.process_time() - cpu
                if cycle == 0:
                    figures[f"{name}_first_cpu_s"] = figures[f"{name}_cpu_s"]
                print(
                    f"  cycle {cycle + 1} {name}: {figures[f'{name}_s']:.1f} s, "
                    f"{figures[f'{name}_cpu_s']:.1f} CPU s, of them "
                    f"{collections.seconds:.2f} s in {collections.full} full collections",
                    flush=True,
                )
            # What the service does after every cycle (runtime.gcpause): full collections
            # walk only what the cycle after made.
            freeze_long_lived()
            if cycle < 2:
                clock.advance(30)
                conn.send("advance")
                conn.recv()
        errors = sum(sum(h.errors.values()) for h in healths)
    series = store.stats().series
    store.close()
    return {
        "nodes": nodes,
        "pods": nodes * PODS_PER_NODE,
        "errors": errors,
        "series": series,
        "peak_mib": resource_usage_mib(),
        **figures,
    }


class GcTime:
    """Time spent in the cyclic garbage collector's full collections (of the oldest
    generation), and how many ran, since this was made: a job's allocations may set them
    off, and each walks every object not frozen yet."""

    def __init__(self) -> None:
        self.full = 0
        self.seconds = 0.0
        self._started = 0.0

    def __enter__(self) -> GcTime:
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.full += 1
            self.seconds += time.perf_counter() - self._started


def resource_usage_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_stats(sizes: list[int]) -> list[dict[str, Any]]:
    """Measure full cycles with cAdvisor and the summary API per cluster size (fleet)."""
    rows = []
    ctx = multiprocessing.get_context("spawn")
    for nodes in sizes:
        print(f"{nodes:,} nodes x {PODS_PER_NODE} pods with cAdvisor and summary ...", flush=True)
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_child, args=(nodes, child, True), daemon=True)
        proc.start()
        try:
            info = parent.recv()
            rows.append(asyncio.run(_measure_stats(nodes, info, parent)))
        finally:
            parent.send("stop")
            proc.join(timeout=120)
    return rows


def interval_cpu_s(row: dict[str, Any], settings: CollectorSettings) -> float:
    """CPU seconds the three collectors take per cAdvisor interval at their default
    intervals: ``/metrics/resource`` every scrape interval (twice in 30 s), the summary
    every ``summary_interval_seconds`` (every other one)."""
    interval = settings.cadvisor_interval_seconds
    return float(
        row["resource_cpu_s"] * interval / settings.scrape_interval_seconds
        + row["cadvisor_cpu_s"]
        + row["summary_cpu_s"] * interval / settings.summary_interval_seconds
    )


def _print_stats(rows: list[dict[str, Any]]) -> None:
    settings = CollectorSettings()
    interval = settings.cadvisor_interval_seconds
    print()
    print(
        f"{'nodes':>6} {'pods':>8} {'series':>10} {'errors':>6} {'resource s':>10} "
        f"{'cAdvisor s':>10} {'summary s':>9} {'cycle s':>8} {'cycle CPU s':>11} "
        f"{f'CPU s per {interval:.0f} s':>15} {'cAdvisor samples':>16} {'summary samples':>15} "
        f"{'peak RSS MiB':>12} {'first cycle CPU s':>17}"
    )
    for r in rows:
        cycle = r["resource_s"] + r["cadvisor_s"] + r["summary_s"]
        cpu = r["resource_cpu_s"] + r["cadvisor_cpu_s"] + r["summary_cpu_s"]
        first = sum(r[f"{name}_first_cpu_s"] for name in ("resource", "cadvisor", "summary"))
        print(
            f"{r['nodes']:>6,} {r['pods']:>8,} {r['series']:>10,} {r['errors']:>6} "
            f"{r['resource_s']:>10.2f} {r['cadvisor_s']:>10.2f} {r['summary_s']:>9.2f} "
            f"{cycle:>8.2f} {cpu:>11.2f} {interval_cpu_s(r, settings):>15.2f} "
            f"{r['cadvisor_samples']:>16,} {r['summary_samples']:>15,} {r['peak_mib']:>12,.0f} "
            f"{first:>17.1f}"
        )
    print(
        f"\ngoal: a full cycle within the cAdvisor interval ({interval:.0f} s) on one core, and "
        f"so the CPU of every collection in {interval:.0f} s at the default intervals (resource "
        f"every {settings.scrape_interval_seconds:.0f} s, summary every "
        f"{settings.summary_interval_seconds:.0f} s); wall time includes the kubelet fleet "
        "(the other core) rendering 2.4 MB per node; the first cycle creates every series"
    )


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
    parser.add_argument("--nodes", type=int, nargs="*", default=[100, 1_000, 5_000])
    parser.add_argument(
        "--stats-nodes",
        type=int,
        nargs="*",
        default=[1_000, 5_000],
        help="sizes of the full cycle with cAdvisor and the summary API (none: skip it)",
    )
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
    if args.stats_nodes:
        _print_stats(run_stats(args.stats_nodes))


if __name__ == "__main__":
    main()
