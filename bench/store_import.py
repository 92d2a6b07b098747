"""The import part of ``bench.store``: ``foresight store import`` on a generated file, and
``promtool tsdb create-blocks-from openmetrics`` on the same file when promtool is installed.

The file looks like a dump of what a cluster's Prometheus scraped every 15 s: CPU-seconds and
request counters, memory and readiness gauges of thousands of pods, and a few latency
histograms of 12 buckets. Series after series (as ``store export`` and ``promtool tsdb dump``
write) or scrape after scrape (as scrapes appended to one file come, every family appearing
once per scrape). Both programs run as child processes; time is wall-clock from start to
exit, memory the child's peak resident set (what ``/usr/bin/time -v`` reports).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

Layout = Literal["series", "scrapes"]
LAYOUTS: tuple[Layout, ...] = ("series", "scrapes")
_ORDER = {"series": "series after series", "scrapes": "scrape after scrape"}

T0_S = 1_750_000_000
STEP_S = 15
POINTS = 480  # two hours of 15 s scrapes, by default
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")
_HISTOGRAMS = 4
_HISTOGRAM_LABEL_SETS = 5
REPO = Path(__file__).resolve().parents[1]


@dataclass
class _Family:
    header: str
    series: list[tuple[str, list[str]]]  # (name{labels}, value texts per point)


def _families(samples: int, points: int, seed: int) -> list[_Family]:
    rng = np.random.default_rng(seed)
    histogram_series = _HISTOGRAMS * _HISTOGRAM_LABEL_SETS * (len(BUCKETS) + 2)
    pods = max((samples // points - histogram_series) // 4, 1)
    labels = [
        f'container="app",namespace="ns-{i % 20}",node="node-{i % 100}",pod="web-{i}"'
        for i in range(pods)
    ]

    def header(name: str, kind: str, help_text: str) -> str:
        return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"

    def texts(values: np.ndarray, digits: int | None = None) -> list[str]:
        if digits is None:
            return [str(v) for v in values.astype(np.int64).tolist()]
        return [repr(v) for v in np.round(values, digits).tolist()]

    cpu = np.cumsum(rng.gamma(2.0, 0.2, (pods, points)) * STEP_S, axis=1)
    requests = np.cumsum(rng.poisson(30, (pods, points)), axis=1)
    steps = rng.integers(-2, 3, (pods, points)) * 4096
    memory = rng.integers(50, 2000, (pods, 1)) * 2**20 + np.cumsum(steps, axis=1)
    ready = (rng.random((pods, points)) > 0.001).astype(float)
    families = [
        _Family(
            header("container_cpu_usage_seconds", "counter", "CPU time consumed."),
            [
                (f"container_cpu_usage_seconds_total{{{lb}}}", texts(cpu[i], 6))
                for i, lb in enumerate(labels)
            ],
        ),
        _Family(
            header("http_requests", "counter", "Requests served."),
            [
                (f'http_requests_total{{code="200",{lb}}}', texts(requests[i]))
                for i, lb in enumerate(labels)
            ],
        ),
        _Family(
            header("container_memory_working_set_bytes", "gauge", "Working set."),
            [
                (f"container_memory_working_set_bytes{{{lb}}}", texts(memory[i]))
                for i, lb in enumerate(labels)
            ],
        ),
        _Family(
            header("kube_pod_ready", "gauge", "Whether the pod is ready."),
            [(f"kube_pod_ready{{{lb}}}", texts(ready[i])) for i, lb in enumerate(labels)],
        ),
    ]
    for h in range(_HISTOGRAMS):
        name = f"http_request_duration_seconds_{h}"
        series: list[tuple[str, list[str]]] = []
        for j in range(_HISTOGRAM_LABEL_SETS):
            lb = f'handler="/api/{j}",namespace="ns-{j}"'
            per_bucket = np.cumsum(rng.poisson(20, (points, len(BUCKETS))), axis=0)
            cumulative = np.cumsum(per_bucket, axis=1)
            series += [
                (f'{name}_bucket{{{lb},le="{le}"}}', texts(cumulative[:, b]))
                for b, le in enumerate(BUCKETS)
            ]
            series.append((f"{name}_sum{{{lb}}}", texts(cumulative[:, -1] * 0.137, 3)))
            series.append((f"{name}_count{{{lb}}}", texts(cumulative[:, -1])))
        families.append(_Family(header(name, "histogram", "Request latency."), series))
    return families


def write_file(
    path: Path, samples: int, layout: Layout = "series", points: int = POINTS, seed: int = 1
) -> int:
    """Write an OpenMetrics file of about ``samples`` samples, ``points`` per series;
    returns the exact number."""
    stamps = [f"{T0_S + k * STEP_S}.000" for k in range(points)]
    written = 0
    with path.open("w", encoding="utf-8") as out:
        families = _families(samples, points, seed)
        if layout == "series":
            for family in families:
                out.write(family.header)
                for key, values in family.series:
                    out.write(
                        "".join([f"{key} {v} {t}\n" for v, t in zip(values, stamps, strict=True)])
                    )
                    written += len(values)
        else:
            for k, t in enumerate(stamps):
                for family in families:
                    out.write(family.header)
                    out.write(
                        "".join([f"{key} {values[k]} {t}\n" for key, values in family.series])
                    )
                    written += len(family.series)
        out.write("# EOF\n")
    return written


@dataclass
class Run:
    """One child process: wall and CPU seconds, peak resident set, what it printed."""

    seconds: float
    cpu_seconds: float
    peak_mib: float
    stderr: str


def _run(argv: list[str], env: dict[str, str] | None = None) -> Run:
    start = time.perf_counter()
    child = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    assert child.stderr is not None
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({child.returncode}): {err[-2000:]}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, err)


def measure(samples: int, layout: Layout, points: int = POINTS) -> list[tuple[str, str, str]]:
    """Rows of (measure, value, target) for one generated file."""
    rows: list[tuple[str, str, str]] = []
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        path = work / "dump.om"
        print(f"writing {samples:,} samples, {_ORDER[layout]} ...", flush=True)
        total = write_file(path, samples, layout, points)
        size = path.stat().st_size
        rows.append(
            (f"import file ({_ORDER[layout]}, {points} per series)", f"{size / 2**20:,.0f} MiB", "")
        )
        env = {
            **os.environ,
            "FORESIGHT_STORE__DATA_DIR": str(work / "data"),
            "FORESIGHT_STORE__RAW_RETENTION_HOURS": "1000000",
            "FORESIGHT_STORE__MINUTE_RETENTION_DAYS": "100000",
            "FORESIGHT_STORE__FIVE_MINUTE_RETENTION_DAYS": "100000",
        }
        command = [sys.executable, "-m", "autoscaler.cli.main", "store", "import"]
        print("foresight store import ...", flush=True)
        ours = _run([*command, str(path)], env)
        imported = re.search(r"imported ([\d,]+) samples", ours.stderr)
        assert imported is not None and int(imported.group(1).replace(",", "")) == total, ours
        label = f"store import, {total / 1e6:.1f} M samples"
        rows.append((f"{label}: speed", f"{total / ours.seconds:,.0f} samples/s", ">= 250,000"))
        rows.append((f"{label}: peak memory", f"{ours.peak_mib:,.0f} MiB", "< 500"))
        # On a busy machine wall time says more about the neighbours than about the code.
        rows.append((f"{label}: per CPU second", f"{total / ours.cpu_seconds:,.0f} samples", ""))
        # What the speed above includes before the first line is read.
        tiny = work / "tiny.om"
        tiny.write_text(f"up 1 {T0_S}\n# EOF\n")
        empty_store = {**env, "FORESIGHT_STORE__DATA_DIR": str(work / "empty")}
        start_up = _run([*command, str(tiny)], empty_store)
        rows.append(("store import of 1 sample (start-up)", f"{start_up.seconds:.2f} s", ""))
        promtool = shutil.which("promtool")
        if promtool is not None:
            print("promtool tsdb create-blocks-from openmetrics ...", flush=True)
            theirs = _run(
                [
                    promtool,
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    str(path),
                    str(work / "prom"),
                ]
            )
            rows.append(
                ("promtool, same file: speed", f"{total / theirs.seconds:,.0f} samples/s", "")
            )
            rows.append(("promtool, same file: peak memory", f"{theirs.peak_mib:,.0f} MiB", ""))
            per_cpu = f"{total / theirs.cpu_seconds:,.0f} samples"
            rows.append(("promtool, same file: per CPU second", per_cpu, ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows
