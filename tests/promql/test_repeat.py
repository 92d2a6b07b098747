"""Values kept from one evaluation of a query to the next give the same results as
evaluating afresh, whatever changed in between, and are reused when nothing did."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.rules.group import written_metrics
from bench.promql import SCRAPE_MS, SCRAPES, T0_MS, Cluster, build_store, load_groups, load_rules
from promql import Engine, PromQLSettings, QueryResult, RepeatCache
from promql.functions import FUNCTIONS
from tests.support.external import require_data
from tsdb import STALE_NAN, Store

MemoryStore = Callable[..., Store]
MIN = 60_000

# Joins, aggregations and functions over instant selectors (kept), and over time or
# ranges (never kept, or kept only below them).
QUERIES = [
    "sum by (ns) (usage * on (ns, pod) group_left (node) info)",
    "count by (node) (info) + on (node) group_left sum by (node) (usage)",
    "topk by (ns) (1, usage)",
    "count_values by (ns) ('v', phase)",
    "absent(missing) or vector(1)",
    "absent(usage{pod='p0'})",
    "-usage + 1",
    "usage > bool 5",
    "usage and on (pod) phase == 1",
    "usage unless on (pod) phase == 1",
    "label_replace(usage, 'p', '$1', 'pod', 'p(.*)')",
    "sort_desc(usage)",
    "scalar(sum(phase)) * usage",
    "quantile by (ns) (0.9, usage)",
    "timestamp(usage)",
    "timestamp(label_replace(usage, 'x', 'y', '', ''))",
    "time() - usage",
    "hour()",
    "minute(usage)",
    "sum(rate(counter[3m])) * on () group_left count(info)",
    "max_over_time(usage[3m]) * on (ns, pod) group_left (node) info",
    "usage @ start()",
    "sum by (ns) (usage offset 1m)",
]

_PODS = [("a", "p0"), ("a", "p1"), ("b", "p2"), ("b", "p3")]


def _points(result: QueryResult) -> list[tuple[object, ...]]:
    return sorted(
        (s.labels, tuple(np.nan_to_num(s.values, nan=1e308).tolist())) for s in result.series
    )


def _write(store: Store, at: int, usage: list[float], phase: list[float], gone: set[int]) -> None:
    for i, (ns, pod) in enumerate(_PODS):
        series = {"ns": ns, "pod": pod}
        value = STALE_NAN if i in gone else usage[i]
        store.append({"__name__": "usage", **series}, at, value)
        store.append({"__name__": "phase", **series}, at, phase[i])
        store.append({"__name__": "info", **series, "node": f"n{i % 2}"}, at, 1.0)
        store.append({"__name__": "counter", **series}, at, at / 1000 * (i + 1))


_ROUND = st.tuples(
    st.lists(st.sampled_from([1.0, 2.0, 7.0, -0.0, 0.0, math.nan]), min_size=4, max_size=4),
    st.lists(st.sampled_from([0.0, 1.0]), min_size=4, max_size=4),
    st.sets(st.integers(0, 3), max_size=2),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rounds=st.lists(_ROUND, min_size=2, max_size=6), repeats=st.lists(st.booleans(), min_size=6))
def test_kept_values_agree_with_fresh_ones(
    memory_store: MemoryStore,
    rounds: list[tuple[list[float], list[float], set[int]]],
    repeats: list[bool],
) -> None:
    """Rounds that change some values, make series stale or change nothing (a round may
    write the very same values again) agree with evaluating every query afresh."""
    store = memory_store()
    engine = Engine(store)
    caches = {query: RepeatCache() for query in QUERIES}
    at = 0
    last: tuple[list[float], list[float], set[int]] | None = None
    for k, drawn in enumerate(rounds):
        step = last if last is not None and repeats[k % len(repeats)] else drawn
        at += MIN
        _write(store, at, *step)
        last = step
        for query in QUERIES:
            fresh = engine.instant(query, at + 1)
            kept = engine.instant(query, at + 1, repeat=caches[query])
            assert _points(kept) == _points(fresh), (query, k)


def test_unchanged_selectors_reuse_the_whole_join(memory_store: MemoryStore) -> None:
    store = memory_store()
    engine = Engine(store)
    cache = RepeatCache()
    query = "sum by (node) (usage * on (ns, pod) group_left (node) info)"
    for minute in (1, 2, 3):
        _write(store, minute * MIN, [1.0, 2.0, 3.0, 4.0], [1.0] * 4, set())
        result = engine.instant(query, minute * MIN, repeat=cache)
        assert _points(result) == [((("node", "n0"),), (4.0,)), ((("node", "n1"),), (6.0,))]
    assert (cache.misses, cache.hits) == (1, 2)
    _write(store, 4 * MIN, [1.0, 2.0, 3.0, 5.0], [1.0] * 4, set())
    assert _points(engine.instant(query, 4 * MIN, repeat=cache))[1] == ((("node", "n1"),), (7.0,))
    assert (cache.misses, cache.hits) == (2, 2)


def test_values_that_depend_on_time_are_made_again(memory_store: MemoryStore) -> None:
    store = memory_store()
    engine = Engine(store)
    cache = RepeatCache()
    for minute in (1, 2):
        _write(store, minute * MIN, [1.0] * 4, [1.0] * 4, set())
        result = engine.instant(
            "max(timestamp(usage)) + 0 * count(info)", minute * MIN, repeat=cache
        )
        assert result.series[0].values.tolist() == [minute * 60.0]
    # timestamp() reads the sample times: only count(info) is a kept subexpression.
    assert cache.hits == 1


def test_annotations_are_raised_at_every_evaluation(memory_store: MemoryStore) -> None:
    store = memory_store()
    engine = Engine(store)
    cache = RepeatCache()
    query = "1 + histogram_quantile(2, sum by (le) (h_bucket))"
    for minute in (1, 2):
        for i, le in enumerate(("1", "+Inf")):
            store.append({"__name__": "h_bucket", "le": le}, minute * MIN, float(i + 1))
        result = engine.instant(query, minute * MIN, repeat=cache)
        assert result.annotations.warnings == [
            "PromQL warning: quantile value should be between 0 and 1, got 2 (1:5)"
        ]
    assert cache.hits == 0


def test_functions_that_read_the_evaluation_times_say_so() -> None:
    """A function whose body reads the times or bounds of the evaluation must be marked,
    or its value would be kept while the times move on."""
    for name, function in FUNCTIONS.items():
        source = inspect.getsource(function.body)
        reads = any(
            word in source
            for word in ("ctx.times", "ctx.query_", "ctx.forecaster", "ctx.steps_key")
        )
        if reads:
            assert function.reads_time, name


def test_kube_prometheus_rules_agree_over_rounds() -> None:
    """Every kube-prometheus rule, group by group with a cache each, at successive
    scrapes: as evaluated afresh, and most kept subexpressions reused."""
    rules = require_data("promql/rules/kube-prometheus")
    cluster = Cluster(nodes=3, pods_per_node=4)
    store = build_store(load_rules(rules), cluster)
    engine = Engine(store, PromQLSettings())
    groups = load_groups(rules)
    caches = [RepeatCache() for _ in groups]
    for scrape in range(SCRAPES - 4, SCRAPES):
        at = T0_MS + scrape * SCRAPE_MS + 1
        for group, cache in zip(groups, caches, strict=True):
            shared = engine.shared(written_metrics(group))
            for rule in group.rules:
                alone = engine.instant(rule.expr, at)
                kept = engine.instant(rule.expr, at, shared, cache)
                assert _points(kept) == _points(alone), (group.file, rule.expr, scrape)
    hits = sum(c.hits for c in caches)
    misses = sum(c.misses for c in caches)
    # kube-state-metrics' series keep their values: most checks after the first round hit.
    assert hits > misses, (hits, misses)


def test_kept_values_speak_the_codes_of_the_query_that_reuses_them(
    memory_store: MemoryStore,
) -> None:
    """A recording rule adds its name to the store after its first evaluation; a value
    kept from then must give that name the store's code, as a fresh one would."""
    store = memory_store()
    engine = Engine(store)
    cache = RepeatCache()
    query = "sum by (node) (info)"
    _write(store, MIN, [1.0] * 4, [1.0] * 4, set())
    first = engine.instant(query, MIN, repeat=cache).columns().table
    store.append({"__name__": "node:info:sum", "node": "n0"}, MIN, 2.0)
    _write(store, 2 * MIN, [1.0] * 4, [1.0] * 4, set())
    again = engine.instant(query, 2 * MIN, repeat=cache).columns().table
    assert cache.hits == 1
    assert first.strings.code("node:info:sum") < 0  # unknown when the first query began
    assert again.strings.code("node:info:sum") == store.strings.find("node:info:sum")


def test_an_annotation_raised_twice_in_a_query_keeps_its_subexpression_fresh(
    memory_store: MemoryStore,
) -> None:
    """Annotations are listed once per query: a subexpression that raises one already
    raised earlier in the query must still be evaluated (and raise it) next time."""
    store = memory_store()
    engine = Engine(store)
    cache = RepeatCache()
    query = (
        "histogram_quantile(0.5, sum by (le) (a_bucket)) + 0 * time()"
        " + histogram_quantile(0.5, sum by (le) (b_bucket))"
    )
    for minute, a_counts in ((1, (5.0, 3.0)), (2, (3.0, 5.0))):
        for name, counts in (("a_bucket", a_counts), ("b_bucket", (5.0, 3.0))):
            for le, count in zip(("1", "+Inf"), counts, strict=True):
                store.append({"__name__": name, "le": le}, minute * MIN, count)
        fresh = engine.instant(query, minute * MIN)
        kept = engine.instant(query, minute * MIN, repeat=cache)
        assert _points(kept) == _points(fresh)
        assert kept.annotations.infos == fresh.annotations.infos
        assert fresh.annotations.infos
