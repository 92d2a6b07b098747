"""Algebraic properties of the evaluator on random data (Hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promql import Engine, PromQLError
from promql.labelsets import LabelTable, Strings, factorize
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings
from tsdb.strings import StringTable

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


pods = st.lists(
    st.tuples(st.sampled_from(["n1", "n2"]), st.sampled_from(["p1", "p2", "p3"]), values),
    max_size=6,
)


def _join_engine(left: list[tuple[str, str, float]], right: list[tuple[str, str, float]]) -> Engine:
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    for i, (ns, pod, v) in enumerate(left):
        store.append({"__name__": "x", "ns": ns, "pod": pod, "c": str(i)}, AT - 1_000, v)
    for i, (ns, pod, v) in enumerate(right):
        labels = {"__name__": "owner", "ns": ns, "pod": pod, "w": f"w{i}"}
        store.append(labels, AT - 1_000, v)
    return Engine(store)


@settings(max_examples=80, deadline=None)
@given(left=pods, right=pods)
def test_joins_pair_series_as_their_signatures_say(
    left: list[tuple[str, str, float]], right: list[tuple[str, str, float]]
) -> None:
    """Series paired by ``on (ns, pod)``, as a dictionary of the right side pairs them,
    whether the right side has one series per signature or more."""
    engine = _join_engine(left, right)
    owners: dict[tuple[str, str], list[int]] = {}
    for i, (ns, pod, _) in enumerate(right):
        owners.setdefault((ns, pod), []).append(i)
    query = "x * on (ns, pod) group_left (w) owner"
    # As Prometheus: two "one"-side series with a signature fail even where none matches.
    if left and any(len(v) > 1 for v in owners.values()):
        with pytest.raises(PromQLError, match="duplicate series"):
            engine.instant(query, AT)
    else:
        expected = {}
        for i, (ns, pod, v) in enumerate(left):
            for j in owners.get((ns, pod), []):
                labels = (("c", str(i)), ("ns", ns), ("pod", pod), ("w", f"w{j}"))
                expected[labels] = v * right[j][2]
        assert _by_labels(engine, query) == pytest.approx(expected)
    signatures = {(ns, pod) for ns, pod, _ in right}
    kept = {
        (("__name__", "x"), ("c", str(i)), ("ns", ns), ("pod", pod)): v
        for i, (ns, pod, v) in enumerate(left)
    }
    both = {k: v for k, v in kept.items() if (k[2][1], k[3][1]) in signatures}
    assert _by_labels(engine, "x and on (ns, pod) owner") == both
    assert _by_labels(engine, "x unless on (ns, pod) owner") == {
        k: v for k, v in kept.items() if k not in both
    }


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=8),
    wanted=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=8),
)
def test_signature_keys_find_each_row_with_the_same_values(
    rows: list[tuple[int, int]], wanted: list[tuple[int, int]]
) -> None:
    strings = Strings()
    here = LabelTable(["a", "b"], np.array(rows, np.int32).reshape(-1, 2), strings)
    there = LabelTable(["a", "c"], np.array(wanted, np.int32).reshape(-1, 2), strings)
    names = ("a", "b")  # "b" is absent from there: empty
    keys, looked_for = here.signature_keys(names), there.signature_keys(names)
    found = keys.find(looked_for)
    if len(set(rows)) < len(rows):
        assert found is None
        return
    assert found is not None
    assert found.tolist() == [rows.index((a, 0)) if (a, 0) in rows else -1 for a, _ in wanted]
    # Once the keys looked for are sorted (a one-to-one join checks them), they are looked
    # up in that order: the same answer.
    looked_for.distinct  # noqa: B018
    again = keys.find(looked_for)
    assert again is not None
    assert again.tolist() == found.tolist()


def test_many_rows_are_found_as_few_are() -> None:
    """From some thousands of rows on, the rows looked up are sorted first: the same rows."""
    rng = np.random.default_rng(7)
    strings = Strings()
    rows = np.unique(rng.integers(1, 500, (9000, 2)), axis=0).astype(np.int32)
    wanted = rng.integers(1, 520, (6000, 2)).astype(np.int32)
    keys = LabelTable(["a", "b"], rows, strings).signature_keys(("a", "b"))
    found = keys.find(LabelTable(["a", "b"], wanted, strings).signature_keys(("a", "b")))
    at = {tuple(r): i for i, r in enumerate(rows.tolist())}
    assert found is not None
    assert found.tolist() == [at.get(tuple(w), -1) for w in wanted.tolist()]
    # A few of them, looked up in row order: the same answers.
    few = keys.find(LabelTable(["a", "b"], wanted[:50], strings).signature_keys(("a", "b")))
    assert few is not None and few.tolist() == found[:50].tolist()


def test_signature_keys_are_checked_against_the_values() -> None:
    """Two different label values with one hash (made so here) are never paired."""
    strings = Strings()
    here = LabelTable(["a"], np.array([[1], [2]], np.int32), strings).signature_keys(("a",))
    there = LabelTable(["a"], np.array([[3]], np.int32), strings).signature_keys(("a",))
    there.hashes = here.hashes[:1].copy()
    assert here.find(there) is None


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 1, 2, 3, 5000]),  # 5000 spreads the codes: sorted, not tabled
            st.sampled_from([0, -1, -2, 4]),  # negative: values the query made up
        ),
        max_size=20,
    )
)
def test_tuples_name_each_row_with_its_present_labels(rows: list[tuple[int, int]]) -> None:
    """Rows that share a value share its pair; absent labels (code 0) are left out."""
    base = StringTable()
    for i in range(1, 5001):
        base.code(f"v{i}")
    strings = Strings(base)
    strings.code("made-1"), strings.code("made-2")
    codes = np.array(rows, np.int32).reshape(-1, 2)
    tuples = LabelTable(["a", "b"], codes, strings).tuples()
    assert tuples == [
        tuple((name, strings.value(c)) for name, c in zip("ab", row, strict=True) if c)
        for row in rows
    ]
