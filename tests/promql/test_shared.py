"""Subexpression values shared within a round give the same results as evaluating every
query alone, and never hide what was written during the round."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from alerts.rules.group import written_metrics
from alerts.rules.loader import load_text
from bench.promql import SCRAPE_MS, SCRAPES, T0_MS, Cluster, build_store, load_groups, load_rules
from promql import Engine, PromQLSettings, QueryResult
from tests.support.external import require_data
from tsdb import Store

MemoryStore = Callable[..., Store]
MIN = 60_000


def _points(result: QueryResult) -> list[tuple[object, ...]]:
    return sorted(
        (s.labels, tuple(np.nan_to_num(s.values, nan=1e308).tolist())) for s in result.series
    )


# Rules that join their usage against the same owner lookup, as kube-prometheus' do.
JOINS = """groups:
- name: joins
  rules:
  - record: node_namespace_pod_container:cpu:sum
    expr: sum by (namespace, pod, node) (rate(cpu_total[5m]) * on (namespace, pod) group_left (node)
      topk by (namespace, pod) (1, max by (namespace, pod, node) (pod_info)))
  - record: node_namespace_pod_container:memory:sum
    expr: sum by (namespace, pod, node) (memory * on (namespace, pod) group_left (node)
      topk by (namespace, pod) (1, max by (namespace, pod, node) (pod_info)))
  - record: namespace:cpu:sum
    expr: sum by (namespace) (rate(cpu_total[5m]))
  - alert: BusyPod
    expr: rate(cpu_total[5m]) * on (namespace, pod) group_left (node)
      topk by (namespace, pod) (1, max by (namespace, pod, node) (pod_info)) > 0.5
"""


def test_joined_rules_agree_shared_or_not(memory_store: MemoryStore) -> None:
    samples = []
    for i in range(6):
        pod = {"namespace": f"ns{i % 2}", "pod": f"p{i}"}
        for t in range(12):
            at = t * MIN
            samples.append(({"__name__": "pod_info", **pod, "node": f"n{i % 3}"}, at, 1.0))
            samples.append(({"__name__": "cpu_total", **pod}, at, float(t * (i + 1) * 10)))
            samples.append(({"__name__": "memory", **pod}, at, float(100 * i + t)))
    engine = Engine(memory_store(samples))
    (group,) = load_text(JOINS, "joins.yaml")
    shared = engine.shared(written_metrics(group))
    for rule in group.rules:
        alone = engine.instant(rule.expr, 11 * MIN)
        assert alone.series, rule.expr
        assert _points(engine.instant(rule.expr, 11 * MIN, shared)) == _points(alone), rule.expr
    # The lookup again in the second rule, the rate in the third, the whole join in the alert.
    assert shared.hits == 3


def test_kube_prometheus_rules_agree_shared_or_not() -> None:
    """Every kube-prometheus rule, group by group as the rule engine runs them."""
    rules = require_data("promql/rules/kube-prometheus")
    cluster = Cluster(nodes=4, pods_per_node=6)
    store = build_store(load_rules(rules), cluster)
    engine = Engine(store, PromQLSettings())
    at = T0_MS + (SCRAPES - 1) * SCRAPE_MS + 1
    hits = 0
    for group in load_groups(rules):
        shared = engine.shared(written_metrics(group))
        for rule in group.rules:
            alone = engine.instant(rule.expr, at)
            together = engine.instant(rule.expr, at, shared)
            assert _points(together) == _points(alone), (group.file, rule.expr)
        hits += shared.hits
    # The container and resource groups repeat their joins: sharing must happen.
    assert hits >= 50


def test_a_metric_written_during_the_round_is_read_again(memory_store: MemoryStore) -> None:
    store = memory_store([({"__name__": "x", "pod": "a"}, 0, 1.0)])
    engine = Engine(store)
    shared = engine.shared(written={"recorded"})
    assert engine.instant("sum(x)", MIN, shared).series[0].values.tolist() == [1.0]
    assert engine.instant("sum(recorded)", MIN, shared).series == []
    store.append({"__name__": "recorded", "pod": "a"}, MIN, 5.0)
    assert engine.instant("sum(recorded)", MIN, shared).series[0].values.tolist() == [5.0]
    # The unwritten metric's subexpression was shared by the second query that read it.
    assert engine.instant("sum(x) * 2", MIN, shared).series[0].values.tolist() == [2.0]
    assert shared.hits == 1


def test_selectors_without_a_metric_name_are_not_shared(memory_store: MemoryStore) -> None:
    store = memory_store([({"__name__": "x", "pod": "a"}, 0, 1.0)])
    engine = Engine(store)
    shared = engine.shared()
    engine.instant('count({__name__=~"x|y"})', MIN, shared)
    store.append({"__name__": "y", "pod": "a"}, MIN, 1.0)
    assert engine.instant('count({__name__=~"x|y"})', MIN, shared).series[0].values[0] == 2.0
    assert shared.hits == 0


def test_each_query_gets_its_own_annotations(memory_store: MemoryStore) -> None:
    samples = [
        ({"__name__": "h_bucket", "le": le}, t * MIN, float(t * (i + 1)))
        for t in range(10)
        for i, le in enumerate(("1", "+Inf"))
    ]
    engine = Engine(memory_store(samples))
    shared = engine.shared()
    first = engine.instant("histogram_quantile(2, rate(h_bucket[5m]))", 9 * MIN, shared)
    second = engine.instant("1 + histogram_quantile(2, rate(h_bucket[5m]))", 9 * MIN, shared)
    assert first.annotations.warnings == [
        "PromQL warning: quantile value should be between 0 and 1, got 2 (1:1)"
    ]
    assert second.annotations.warnings == [
        "PromQL warning: quantile value should be between 0 and 1, got 2 (1:5)"
    ]
    # The rate under it raised nothing and was shared.
    assert shared.hits == 1


def test_matchers_that_match_everything_do_not_keep_queries_apart(
    memory_store: MemoryStore,
) -> None:
    samples = [
        ({"__name__": "x", "pod": "a", "node": "n1"}, 0, 1.0),
        ({"__name__": "x", "pod": "b"}, 0, 2.0),
        ({"__name__": "x", "pod": "c", "node": "line\nbreak"}, 0, 4.0),
    ]
    engine = Engine(memory_store(samples))
    shared = engine.shared()
    texts = ['sum(x{node=~".*"})', 'sum(x{pod=~".*", node=~".*"})', "sum(x)", 'sum(x{pod!=""})']
    for text in texts:
        assert engine.instant(text, MIN, shared).series[0].values.tolist() == [7.0], text
    # The second and third; "!=" and "=~" other than ".*" keep their own value.
    assert shared.hits == 2
    assert engine.instant('sum(x{node=~".+"})', MIN, shared).series[0].values.tolist() == [5.0]
    assert engine.instant('sum(x{node=".*"})', MIN, shared).series == []
    assert shared.hits == 2
