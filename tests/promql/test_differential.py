"""The evaluator against a real Prometheus on the same random samples.

Debian's Prometheus is 2.42, whose range and lookback windows still include their left
edge. Every sample sits off the evaluation grid (odd milliseconds) and the query times sit
between subquery steps, so no sample or subquery point ever falls on a window edge and
both versions must agree.

Remaining differences, on purpose left out of the query set: Prometheus 2 removes
``__name__`` immediately (so ``label_replace`` cannot read it after ``rate``), and it
lacks functions added in version 3 (``sort_by_label``, ``histogram_fraction`` on classic
buckets, ``double_exponential_smoothing`` under that name).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from promql import Engine
from runtime.clock import VirtualClock
from tests.support.external import require_binary
from tests.support.prometheus import blocks_from_store, running_prometheus
from tsdb import Store, StoreSettings

BASE_MS = 1_700_000_000_000  # a whole hour
SCRAPE_MS = 15_000
HOURS = 3
AT_MS = BASE_MS + 2 * 3_600_000 + 30_000  # between subquery steps

QUERIES = [
    "req_total",
    "rate(req_total[5m])",
    "irate(req_total[5m])",
    "increase(req_total[10m])",
    "sum by (job) (rate(req_total[5m]))",
    "avg without (inst) (mem)",
    "max by (job) (mem) - min by (job) (mem)",
    "count(mem > 500)",
    "mem > bool 500",
    "topk(3, mem)",
    "bottomk by (job) (1, mem)",
    "quantile(0.9, mem)",
    "stddev by (job) (mem)",
    "stdvar(mem)",
    'count_values("v", round(mem / 100))',
    "delta(mem[15m])",
    "idelta(mem[5m])",
    "deriv(mem[20m])",
    "predict_linear(mem[30m], 3600)",
    "changes(mem[30m])",
    "resets(req_total[1h])",
    "avg_over_time(mem[10m])",
    "min_over_time(mem[10m]) + max_over_time(mem[10m])",
    "quantile_over_time(0.5, mem[30m])",
    "stddev_over_time(mem[30m])",
    "count_over_time(mem[7m])",
    "last_over_time(mem[2m])",
    "histogram_quantile(0.9, sum by (le) (rate(lat_bucket[5m])))",
    "histogram_quantile(0.5, rate(lat_bucket[10m]))",
    "mem / on(job, inst) group_left() (req_total > 0)",
    "mem * on(inst) group_left(tier) limits",
    "rate(req_total[5m]) and on(inst) mem > 400",
    "mem unless on(job) limits",
    "mem or vector(1)",
    'label_replace(mem, "host", "h-$1", "inst", "(.*)")',
    'label_join(mem, "id", "/", "job", "inst")',
    "max_over_time(rate(req_total[5m])[30m:1m])",
    "avg_over_time(mem[20m:2m] offset 5m)",
    "mem offset 10m",
    "clamp(mem, 200, 800)",
    "abs(deriv(mem[10m]))",
    "timestamp(mem)",
    'absent(nonexistent{job="x"})',
    "absent_over_time(mem[5m])",
    "scalar(sum(mem)) * 2",
    "sum(mem) % 7",
    "ln(mem) + exp(-mem / 1000)",
    "sgn(deriv(mem[10m]))",
    "day_of_week(vector(time()))",
    "time() - timestamp(mem)",
]


def _series(rng: np.random.Generator) -> list[tuple[dict[str, str], list[float]]]:
    steps = HOURS * 3_600_000 // SCRAPE_MS
    out: list[tuple[dict[str, str], list[float]]] = []
    for job in ("api", "db"):
        for inst in ("0", "1", "2"):
            counts = np.cumsum(rng.poisson(5, steps)).astype(float)
            reset = int(rng.integers(steps // 3, steps))
            counts[reset:] -= counts[reset - 1]
            out.append(({"__name__": "req_total", "job": job, "inst": inst}, counts.tolist()))
            walk = 500 + np.cumsum(rng.normal(0, 10, steps))
            out.append(({"__name__": "mem", "job": job, "inst": inst}, walk.tolist()))
    for inst in ("0", "1", "2"):
        out.append(({"__name__": "limits", "inst": inst, "tier": "gold"}, [1000.0] * steps))
    total = np.zeros(steps)
    for le in ("0.1", "0.5", "1", "5", "+Inf"):
        total = total + np.cumsum(rng.poisson(3, steps))
        out.append(({"__name__": "lat_bucket", "le": le}, total.copy().tolist()))
    return out


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    require_binary("promtool")
    require_binary("prometheus")
    rng = np.random.default_rng(7)
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    for labels, values in _series(rng):
        jitter = rng.integers(1, 2_000, len(values)) | 1  # odd ms: never on a window edge
        for k, v in enumerate(values):
            store.append(labels, BASE_MS + k * SCRAPE_MS + int(jitter[k]), v)
    work = tmp_path_factory.mktemp("prometheus")
    tsdb = blocks_from_store(store, work)
    try:
        with running_prometheus(
            work,
            "global:\n  scrape_interval: 1m\n",
            tsdb,
            "--storage.tsdb.retention.time=36500d",
        ) as url:
            yield Engine(store), url
    finally:
        store.close()


def _theirs(url: str, query: str, params: dict[str, Any]) -> dict[tuple[Any, ...], list[float]]:
    path = "query_range" if "step" in params else "query"
    body = httpx.get(f"{url}/api/v1/{path}", params={"query": query, **params}, timeout=30).json()
    assert body["status"] == "success", body
    data = body["data"]
    if data["resultType"] == "scalar":
        return {(): [float(data["result"][1])]}
    out = {}
    for item in data["result"]:
        key = tuple(sorted(item["metric"].items()))
        points = item["values"] if "values" in item else [item["value"]]
        out[key] = [float(v) for _, v in points]
    return out


def _ours(engine: Engine, query: str, params: dict[str, Any]) -> dict[tuple[Any, ...], list[float]]:
    if "step" in params:
        result = engine.range(
            query, int(params["start"] * 1000), int(params["end"] * 1000), params["step"] * 1000
        )
    else:
        result = engine.instant(query, int(params["time"] * 1000))
    if result.type == "scalar":
        return {(): [result.scalar]}
    return {s.labels: s.values.tolist() for s in result.series}


def _same(a: dict[Any, list[float]], b: dict[Any, list[float]]) -> bool:
    if set(a) != set(b):
        return False
    for key, values in a.items():
        other = b[key]
        if len(values) != len(other):
            return False
        for x, y in zip(values, other, strict=True):
            if not (
                math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) or (math.isnan(x) and math.isnan(y))
            ):
                return False
    return True


@pytest.mark.parametrize("query", QUERIES)
def test_instant_queries_agree(stores: tuple[Engine, str], query: str) -> None:
    engine, url = stores
    params = {"time": AT_MS / 1000}
    ours, theirs = _ours(engine, query, params), _theirs(url, query, params)
    assert _same(ours, theirs), f"{query}\nours:   {ours}\ntheirs: {theirs}"


@pytest.mark.parametrize("query", QUERIES[:20])
def test_range_queries_agree(stores: tuple[Engine, str], query: str) -> None:
    engine, url = stores
    params = {"start": (AT_MS - 1_800_000) / 1000, "end": AT_MS / 1000, "step": 120}
    ours, theirs = _ours(engine, query, params), _theirs(url, query, params)
    assert _same(ours, theirs), f"{query}\nours:   {ours}\ntheirs: {theirs}"
