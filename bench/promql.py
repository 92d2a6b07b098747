"""Benchmark of the PromQL evaluator: ``python -m bench.promql [--nodes N] [--pods-per-node N]``.

One evaluation round of every rule in ``shared/data/promql/rules/kube-prometheus`` over a
store holding a synthetic cluster. Every metric the rules select is given series shaped by
its family: ``node_*`` per node and device, ``kube_node_*`` and ``kubelet_*`` per node,
``container_*`` and ``kube_pod_*`` per pod and container, everything else per target
(instance). Label values the rules match on with ``=`` are used verbatim, so selectors
find their series; ``=~``/``!=`` matchers see the same values. Thirty minutes of samples
are stored, one every 30 s; histograms get a fixed set of ``le`` buckets.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import promql_parser
import yaml

from alerts.promql import Engine, PromQLSettings, parse
from collectors.clock import VirtualClock
from collectors.store import Store, StoreSettings
from collectors.store.selector import matchers_of

RULES = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "promql"
    / "rules"
    / "kube-prometheus"
)
T0_MS = 1_750_000_000_000
SCRAPE_MS = 30_000
SCRAPES = 60
BUCKETS = ("0.005", "0.05", "0.25", "1", "5", "+Inf")


def load_rules(folder: Path) -> list[tuple[str, str]]:
    """``(name, expr)`` of every rule in the folder's YAML files."""
    if not folder.is_dir():
        raise SystemExit(f"rule files not found at {folder} (shared/data/promql/rules)")
    rules = []
    for path in sorted(folder.glob("*.yaml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                rules.append((rule.get("alert") or rule.get("record"), rule["expr"]))
    return rules


def _selected(rules: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """Per metric name, the label values the rules ask for with ``=``."""
    wanted: dict[str, dict[str, str]] = defaultdict(dict)

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            for m in matchers_of(node):
                if m.type.value == "=" and m.name != "__name__":
                    wanted[node.name].setdefault(m.name, m.value)
            wanted[node.name].setdefault("job", "kubernetes")
        return True

    for _, expr in rules:
        promql_parser.walk(parse(expr), visit)
    return wanted


def _identities(name: str, nodes: int, pods_per_node: int) -> list[dict[str, str]]:
    if name.startswith("node_"):
        return [
            {"instance": f"node-{n}", "node": f"node-{n}", "device": f"sd{d}", "mountpoint": "/"}
            for n in range(nodes)
            for d in "ab"
        ]
    if name.startswith(("kube_node_", "kubelet_")):
        return [{"node": f"node-{n}", "instance": f"node-{n}"} for n in range(nodes)]
    if name.startswith(("container_", "kube_pod_")):
        return [
            {
                "namespace": f"ns-{p % 50}",
                "pod": f"pod-{n}-{p}",
                "container": "app",
                "node": f"node-{n}",
                "instance": f"node-{n}",
            }
            for n in range(nodes)
            for p in range(pods_per_node)
        ]
    return [{"instance": f"target-{i}", "pod": f"target-{i}"} for i in range(3)]


def build_store(rules: list[tuple[str, str]], nodes: int, pods_per_node: int) -> Store:
    """A store with series for every metric the rules select."""
    store = Store(StoreSettings(max_series=10_000_000), VirtualClock(0.0), persistent=False)
    rng = np.random.default_rng(1)
    refs: list[int] = []
    for name, fixed in sorted(_selected(rules).items()):
        for identity in _identities(name, nodes, pods_per_node):
            labels = {**identity, **fixed, "__name__": name}
            if name.endswith("_bucket"):
                for le in BUCKETS:
                    refs.append(store.ref({**labels, "le": le}))
            else:
                refs.append(store.ref(labels))
    ids = np.array(refs, dtype=np.int32)
    level = rng.uniform(0, 100, len(ids))
    for k in range(SCRAPES):
        store.append_batch(ids, T0_MS + k * SCRAPE_MS, level * (1 + k / 10))
    return store


def main() -> None:
    """Build the store, evaluate every rule once, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods-per-node", type=int, default=10)
    args = parser.parse_args()
    rules = load_rules(RULES)
    t0 = time.perf_counter()
    store = build_store(rules, args.nodes, args.pods_per_node)
    built = time.perf_counter() - t0
    engine = Engine(store, PromQLSettings(max_samples=500_000_000, max_series=10_000_000))
    at = T0_MS + (SCRAPES - 1) * SCRAPE_MS + 1
    timings: list[tuple[float, str, int]] = []
    start = time.perf_counter()
    for name, expr in rules:
        t = time.perf_counter()
        result = engine.instant(expr, at)
        timings.append((time.perf_counter() - t, name, len(result.series)))
    total = time.perf_counter() - start
    stats = store.stats()
    print(f"{'cluster':<34} {args.nodes:,} nodes, {args.nodes * args.pods_per_node:,} pods")
    print(f"{'series in store':<34} {stats.series:,}")
    print(f"{'samples in store':<34} {stats.head_samples + stats.block_samples:,}")
    print(f"{'store built in':<34} {built:.1f} s")
    print(f"{'rules evaluated':<34} {len(rules)}")
    print(f"{'one evaluation round':<34} {total:.3f} s")
    print()
    print(f"{'slowest rules':<48} {'seconds':>8} {'series':>8}")
    for seconds, name, n in sorted(timings, reverse=True)[:10]:
        print(f"{name:<48} {seconds:>8.3f} {n:>8,}")


if __name__ == "__main__":
    main()
