"""A real Prometheus (Debian package) on a free loopback port, for integration tests."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.external import require_binary
from tsdb import Store
from tsdb.openmetrics import write_openmetrics

__all__ = ["blocks_from_store", "free_port", "running_prometheus"]


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_prometheus(
    workdir: Path, config: str, tsdb: Path | None = None, *extra: str
) -> Iterator[str]:
    """Prometheus with ``config`` (YAML text), ready to answer; yields its base URL. Skips the
    test when Prometheus is not installed."""
    binary = require_binary("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(config, encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={tsdb or workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Real time: Prometheus is a real server with its own start-up.
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not become ready (exit code {proc.poll()})")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def blocks_from_store(store: Store, work: Path) -> Path:
    """Every sample of ``store`` as Prometheus TSDB blocks under ``work/tsdb``, written by
    promtool from the store's OpenMetrics export, for a real Prometheus to serve."""
    promtool = require_binary("promtool")
    exported = work / "samples.om"
    with exported.open("w") as out:
        write_openmetrics(store.select([], 0, 2**62), out)
    tsdb = work / "tsdb"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(exported), str(tsdb)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return tsdb
