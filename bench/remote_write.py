"""Remote write throughput: a store's log of ``--series`` x ``--steps`` samples sent to a
receiver, as a queue catches up after an outage.

The receiver is a real Prometheus (``--web.enable-remote-write-receiver``) when installed
(and ``--receiver sink`` is not given), else a loopback sink that reads each request and
answers 204; either runs in its own process, so the CPU time measured (this process's, user
+ system) is the sender's alone: reading and decoding the log, queueing, encoding protobuf,
snappy, HTTP. With Prometheus the samples it holds are counted at the end, as a check.

    python -m bench.remote_write [--series 10000] [--steps 100] [--shards 4] [--receiver sink]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from remotewrite.queue import QueueManager
from remotewrite.settings import RemoteWriteSettings
from runtime.clock import RealClock
from tsdb import Store, StoreSettings
from tsdb.wal_readers import save_reader_state

_SINK = """
import sys
from aiohttp import web
async def write(request):
    await request.read()
    return web.Response(status=204)
app = web.Application(client_max_size=1 << 28)
app.router.add_post("/api/v1/write", write)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _receiver(work: Path, kind: str) -> Iterator[tuple[str, str]]:
    """(base URL, kind) of a receiver in its own process."""
    port = _free_port()
    prometheus = shutil.which("prometheus") if kind != "sink" else None
    if prometheus:
        (work / "prometheus.yml").write_text("global: {}\n")
        cmd = [
            prometheus,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'prom'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
        ]
        ready, kind = "/-/ready", "prometheus"
    else:
        cmd, ready, kind = [sys.executable, "-c", _SINK, str(port)], None, "sink"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(url + (ready or "/"), timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, kind
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _fill(store: Store, series: int, steps: int, t0_ms: int) -> int:
    refs = np.array(
        [
            store.ref({"__name__": "bench_rw", "pod": f"web-{i}", "namespace": f"ns-{i % 20}"})
            for i in range(series)
        ],
        np.int32,
    )
    rng = np.random.default_rng(1)
    for step in range(steps):
        store.append_batch(refs, t0_ms + step * 15_000, rng.random(series))
        store.flush()
    return series * steps


async def _send(store: Store, url: str, shards: int, per_send: int) -> tuple[QueueManager, float]:
    clock = RealClock()
    settings = RemoteWriteSettings(
        url=f"{url}/api/v1/write",
        name="bench",
        queue_config={
            "min_shards": shards,
            "max_shards": shards,
            "max_samples_per_send": per_send,
            "capacity": per_send * 10,
            "batch_send_deadline_seconds": 0.5,
        },
    )
    queue = QueueManager(settings, store.settings.data_dir, clock)
    # The backlog is in the log before the queue starts: it reads from the log's first
    # segment, as after a restart with a saved position there.
    task = asyncio.create_task(queue.run())
    started = time.perf_counter()
    while not queue.idle():  # noqa: ASYNC110 - a poll is what a benchmark needs
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return queue, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--per-send", type=int, default=2_000)
    parser.add_argument(
        "--receiver",
        choices=("prometheus", "sink"),
        default="prometheus",
        help="prometheus (when installed; else the sink) or a sink that only reads requests",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _receiver(Path(tmp), args.receiver) as (url, kind):
        work = Path(tmp)
        t0_ms = 1_750_000_000_000
        # One head for the whole run: the log is one segment per seal, none deleted here.
        settings = StoreSettings(data_dir=work / "store", head_max_samples=10_000_000)
        store = Store(settings, RealClock())
        try:
            # The queue's position starts at the first segment: save it before filling.
            save_reader_state(
                settings.data_dir,
                "bench",
                1,
                1 << 40,
                {"shards": [{"acked": [1, 0, 0], "inflight": None}] * args.shards},
            )
            n = _fill(store, args.series, args.steps, t0_ms)
            cpu0 = time.process_time()
            queue, wall = asyncio.run(_send(store, url, args.shards, args.per_send))
            cpu = time.process_time() - cpu0
        finally:
            store.close()
        counted = None
        if kind == "prometheus":
            answer = httpx.get(
                f"{url}/api/v1/query",
                params={
                    "query": "sum(count_over_time(bench_rw[1d]))",
                    "time": t0_ms / 1000 + 43_200,
                },
                timeout=60,
            ).json()
            result = answer["data"]["result"]
            counted = int(float(result[0]["value"][1])) if result else 0
    sent = queue.stats.samples_sent
    print(f"receiver              {kind}")
    print(f"samples in the log    {n:,}")
    print(f"samples sent          {sent:,} ({queue.stats.samples_failed:,} failed)")
    if counted is not None:
        print(f"samples in Prometheus {counted:,}")
    print(f"shards                {args.shards} x {args.per_send} samples per request")
    print(f"wall seconds          {wall:.2f}")
    print(f"samples/s sent        {sent / wall:,.0f}")
    print(f"CPU seconds           {cpu:.2f}")
    print(f"CPU-s per 1M samples  {cpu / max(sent, 1) * 1e6:.2f}")
    print(f"bytes per sample      {queue.stats.bytes_sent / max(sent, 1):.2f}")


if __name__ == "__main__":
    main()
