"""Algebraic properties of the evaluator on random data (Hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promql import Engine
from promql.labelsets import factorize
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

AT = 600_000
values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
series_values = st.lists(st.tuples(st.sampled_from("abc"), values), min_size=1, max_size=8)


def _engine(points: list[tuple[str, float]]) -> Engine:
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    for i, (job, v) in enumerate(points):
        store.append({"__name__": "x", "job": job, "inst": str(i)}, AT - 1_000, v)
    return Engine(store)


def _by_labels(engine: Engine, query: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {s.labels: float(s.values[0]) for s in engine.instant(query, AT).series}


@settings(max_examples=60, deadline=None)
@given(series_values)
def test_sum_by_is_the_sum_of_its_parts(points: list[tuple[str, float]]) -> None:
    got = _by_labels(_engine(points), "sum by (job) (x)")
    for job in {j for j, _ in points}:
        expected = math.fsum(v for j, v in points if j == job)
        assert got[(("job", job),)] == pytest.approx(expected, rel=1e-9, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(series_values)
def test_adding_zero_changes_nothing_but_the_name(points: list[tuple[str, float]]) -> None:
    engine = _engine(points)
    plain = {
        tuple(p for p in k if p[0] != "__name__"): v for k, v in _by_labels(engine, "x").items()
    }
    assert _by_labels(engine, "x + 0") == plain
    assert _by_labels(engine, "0 + x") == plain


@settings(max_examples=60, deadline=None)
@given(series_values, st.integers(min_value=0, max_value=10))
def test_topk_size(points: list[tuple[str, float]], k: int) -> None:
    engine = _engine(points)
    assert len(engine.instant(f"topk({k}, x)", AT).series) == min(k, len(points))
    per_job = engine.instant(f"bottomk by (job) ({k}, x)", AT).series
    jobs = {j for j, _ in points}
    assert len(per_job) == sum(min(k, sum(1 for j, _ in points if j == job)) for job in jobs)


@settings(max_examples=60, deadline=None)
@given(series_values)
def test_topk_keeps_the_largest(points: list[tuple[str, float]]) -> None:
    got = sorted(float(s.values[0]) for s in _engine(points).instant("topk(2, x)", AT).series)
    assert got == sorted(v for _, v in points)[-2:]


@settings(max_examples=60, deadline=None)
@given(series_values)
def test_aggregations_agree(points: list[tuple[str, float]]) -> None:
    engine = _engine(points)
    total = _by_labels(engine, "sum(x)")[()]
    assert _by_labels(engine, "sum(sum by (job) (x))")[()] == pytest.approx(total, abs=1e-6)
    assert _by_labels(engine, "count(x)")[()] == len(points)
    avg = _by_labels(engine, "avg(x)")[()]
    assert avg == pytest.approx(total / len(points), rel=1e-9, abs=1e-6)
    assert _by_labels(engine, "min(x)")[()] <= avg <= _by_labels(engine, "max(x)")[()] + 1e-9


@settings(max_examples=40, deadline=None)
@given(series_values)
def test_comparison_filters_and_bool_partition(points: list[tuple[str, float]]) -> None:
    engine = _engine(points)
    kept = len(engine.instant("x > 0", AT).series)
    flags = _by_labels(engine, "x > bool 0")
    assert kept == sum(flags.values()) == sum(1 for _, v in points if v > 0)
    both = len(engine.instant("x > 0 or x <= 0", AT).series)
    assert both == len(points)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 4).flatmap(
        lambda k: st.lists(
            st.lists(
                st.sampled_from([0, 1, 2, -1, 2**30, 2**30 + 1, 2**31 - 1, -(2**31)]),
                min_size=k,
                max_size=k,
            ),
            max_size=30,
        ).map(lambda rows: np.array(rows, dtype=np.int32).reshape(len(rows), k))
    )
)
def test_factorize_groups_exactly_equal_rows(codes: np.ndarray) -> None:
    """Whatever shortcut the key takes (exact numbers of narrow ranges far from zero,
    hashes of wide ones)."""
    first, ids = factorize(codes)
    rows = [tuple(r) for r in codes.tolist()]
    seen: dict[tuple[int, ...], int] = {}
    for i, r in enumerate(rows):
        seen.setdefault(r, i)
    # Groups in order of first appearance, each row in its group.
    assert first.tolist() == sorted(seen.values()) if rows else first.tolist() == []
    for i, r in enumerate(rows):
        assert rows[first[ids[i]]] == r
