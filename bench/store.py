"""Benchmark of the embedded store: ``python -m bench.store [--series N] [--scrapes N]
[--import-samples N] [--import-points N] [--layout series|scrapes] [--only ingest|import]
[--json]``.

Ingest and reads: the data looks like what foresight collects from a cluster, scraped every
15 s: a quarter CPU counters (fractional seconds, the hardest to compress), a quarter memory
gauges (bytes, moving in pages), a quarter request counters (integers) and a quarter 0/1
status gauges. Import: ``foresight store import`` of a generated OpenMetrics file, beside
promtool on the same file (:mod:`bench.store_import`).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.store_import import LAYOUTS, POINTS, measure
from runtime.clock import VirtualClock
from tsdb import Matcher, Store, StoreSettings, eq, name_is

T0_S = 1_750_000_000
SCRAPE_MS = 15_000
KINDS = ("cpu_usage_seconds_total", "memory_working_set_bytes", "requests_total", "ready")


def make_values(series: int, scrapes: int, seed: int = 1) -> np.ndarray:
    """A (scrapes, series) matrix of realistic values, one column per series."""
    rng = np.random.default_rng(seed)
    kind = np.arange(series) % 4
    out = np.empty((scrapes, series))
    cpu = kind == 0
    rates = rng.gamma(2.0, 0.2, size=(scrapes, int(cpu.sum())))
    out[:, cpu] = np.cumsum(rates * SCRAPE_MS / 1000, axis=0)
    mem = kind == 1
    steps = (
        rng.integers(-2, 3, size=(scrapes, int(mem.sum())))
        * 4096
        * rng.integers(0, 2, size=(scrapes, int(mem.sum())))
    )
    out[:, mem] = rng.integers(50, 2000, size=int(mem.sum())) * 2**20 + np.cumsum(steps, axis=0)
    req = kind == 2
    out[:, req] = np.cumsum(rng.poisson(30, size=(scrapes, int(req.sum()))), axis=0)
    ready = kind == 3
    out[:, ready] = (rng.random((scrapes, int(ready.sum()))) > 0.001).astype(float)
    return out


def _timed(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _ingest(store: Store, refs: np.ndarray, values: np.ndarray, clock: VirtualClock) -> float:
    start = time.perf_counter()
    for k in range(values.shape[0]):
        store.append_batch(refs, (T0_S * 1000) + k * SCRAPE_MS, values[k])
        clock.advance(SCRAPE_MS / 1000)
    store.flush()
    return time.perf_counter() - start


def _refs(store: Store, series: int) -> np.ndarray:
    return np.array(
        [
            store.ref(
                {
                    "__name__": KINDS[i % 4],
                    "namespace": f"ns-{i % 20}",
                    "pod": f"pod-{i // 4}",
                    "container": "app",
                    "node": f"node-{i % 100}",
                }
            )
            for i in range(series)
        ],
        dtype=np.int32,
    )


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(series: int, scrapes: int) -> list[tuple[str, str, str]]:
    """Run every measurement; rows of (measure, value, target)."""
    total = series * scrapes
    print(f"generating {series:,} series x {scrapes:,} scrapes = {total:,} samples ...", flush=True)
    values = make_values(series, scrapes)
    rows: list[tuple[str, str, str]] = []
    settings = StoreSettings(
        raw_retention_hours=10_000, minute_retention_days=1_000, five_minute_retention_days=1_000
    )

    rows += _memory_measures(settings, series, scrapes, values)
    gc.collect()
    rows += _disk_measures(settings, series, values)
    rows.append(("peak RSS of this benchmark", f"{_rss_mib():,.0f} MiB", ""))
    return rows


def _memory_measures(
    settings: StoreSettings,
    series: int,
    scrapes: int,
    values: np.ndarray,
) -> list[tuple[str, str, str]]:
    total = values.size
    rows = []
    clock = VirtualClock(start=T0_S)
    mem_store = Store(settings, clock, persistent=False)
    refs = _refs(mem_store, series)
    gc.collect()
    print("ingesting into memory ...", flush=True)
    elapsed = _ingest(mem_store, refs, values, clock)
    rows.append(("batch ingest, memory only", f"{total / elapsed:,.0f} samples/s", ">= 1,000,000"))
    stats = mem_store.stats()
    rows.append(("memory per sample (arrays)", f"{stats.memory_bytes / total:.2f} B", "<= 16"))

    one = [name_is(KINDS[0]), eq("pod", "pod-7")]
    t_one = _timed(lambda: mem_store.select(one, 0, 2**62))
    rows.append(("select 1 series, all samples", f"{t_one * 1000:.2f} ms", ""))
    ten_k = [Matcher.parse("__name__", "=~", ".+"), Matcher.parse("namespace", "=~", "ns-.*")]
    n_matched = min(series, 10_000)
    if series > 10_000:
        ten_k.append(
            Matcher.parse("pod", "=~", "pod-(" + "|".join(str(i) for i in range(2_500)) + ")")
        )
    window = (T0_S * 1000 + (scrapes - 240) * SCRAPE_MS, T0_S * 1000 + scrapes * SCRAPE_MS)
    t_many = _timed(lambda: mem_store.select(ten_k, *window), repeat=3)
    matched = len(mem_store.select(ten_k, *window))
    rows.append((f"select {matched:,} series by matcher, last hour", f"{t_many * 1000:.1f} ms", ""))
    assert matched == n_matched
    return rows


def _disk_measures(
    settings: StoreSettings,
    series: int,
    values: np.ndarray,
) -> list[tuple[str, str, str]]:
    total = values.size
    rows = []
    data_dir = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        clock = VirtualClock(start=T0_S)
        disk_settings = settings.model_copy(update={"data_dir": data_dir})
        store = Store(disk_settings, clock)
        refs = _refs(store, series)
        print("ingesting with persistence ...", flush=True)
        elapsed = _ingest(store, refs, values, clock)
        rows.append(
            ("batch ingest, persistent (log + blocks)", f"{total / elapsed:,.0f} samples/s", "")
        )
        store.maintain()
        store.close()
        disk = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
        rows.append(("disk per sample", f"{disk / total:.2f} B", "<= 3"))
        gc.collect()
        print("reopening ...", flush=True)
        start = time.perf_counter()
        reopened = Store(disk_settings, clock)
        recovery = time.perf_counter() - start
        got = reopened.stats()
        assert got.head_samples + got.block_samples == total, got
        rows.append((f"restart with {total / 1e6:.0f} M samples", f"{recovery:.2f} s", "<= 10 s"))
        reopened.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__)
    parser.add_argument(
        "--series", type=int, default=10_000, help="number of series (default 10,000)"
    )
    parser.add_argument(
        "--scrapes", type=int, default=1_000, help="samples per series (default 1,000)"
    )
    parser.add_argument(
        "--import-samples",
        type=int,
        default=2_000_000,
        help="samples in the file to import (default 2,000,000)",
    )
    parser.add_argument(
        "--layout", choices=LAYOUTS, default="series", help="order of the file to import"
    )
    parser.add_argument(
        "--import-points",
        type=int,
        default=POINTS,
        help=f"samples per series in the file to import (default {POINTS}; fewer: more series)",
    )
    parser.add_argument("--only", choices=["ingest", "import"], help="run one part")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    if args.only != "import":
        rows += run(args.series, args.scrapes)
    if args.only != "ingest":
        rows += measure(args.import_samples, args.layout, args.import_points)
    if args.json:
        print(json.dumps([{"measure": m, "result": v, "target": t} for m, v, t in rows], indent=2))
        return
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'measure':<{width}}  {'result':>22}  target")
    print(f"{'-' * width}  {'-' * 22}  ------")
    for measure_, value, target in rows:
        print(f"{measure_:<{width}}  {value:>22}  {target}")


if __name__ == "__main__":
    main()
