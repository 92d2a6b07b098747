"""Answers encoded a column at a time read as those encoded a series at a time."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from promql import QueryResult
from promql.labelsets import LabelTable, Strings
from promql.results import RangeColumns, SeriesResult
from queryapi.cache import _joined
from queryapi.encode import (
    EncodedMatrix,
    Part,
    _Texts,
    assemble,
    encode_matrix,
    metric_texts,
    query_data,
    series_data,
    value_text,
    values_text,
)
from tsdb.labels import Labels
from tsdb.strings import StringTable

values_st = st.text(alphabet=st.sampled_from(["a", "é", '"', "\\", "\n", "\x01", " ", "z"]))
labels_st = st.dictionaries(
    st.sampled_from(["__name__", "a", "job", "le", "pod"]), values_st, max_size=5
)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(labels_st, max_size=12), known=st.lists(values_st, max_size=5))
def test_metric_texts_are_the_labels_json(rows: list[dict[str, str]], known: list[str]) -> None:
    base = StringTable()
    for value in known:
        base.code(value)
    # Values the store knows keep its codes; the others are made up by the query.
    labels: list[Labels] = [tuple(sorted((k, v) for k, v in row.items() if v)) for row in rows]
    table = LabelTable.from_tuples(labels, Strings(base))
    got = metric_texts(table)
    expected = [json.dumps(dict(lb), ensure_ascii=False, separators=(",", ":")) for lb in labels]
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(width=64),
            st.integers(-(2**60), 2**60).map(float),
            st.sampled_from([0.0, -0.0, 1e-4, 9.99e-5, 1e-6, 1e15, 1e16, 1e21, -1e-5, 0.5]),
            # Where printing in one call begins and ends.
            st.sampled_from([1e-5, 9.999999999999999e-06, 9999999999999998.0, 2.0**53 + 2]),
            st.floats(1e-7, 1e18),
        ),
        max_size=30,
    )
)
def test_values_text_prints_each_as_value_text(values: list[float]) -> None:
    assert values_text(values) == [value_text(v) for v in values]
    # Many values, repeated: each distinct one is printed once, or taken from those printed.
    many = values * 20 + [-v for v in values]
    assert values_text(many) == [value_text(v) for v in many]
    # Many values, all different (gauges that move).
    moving = [float(i) + 0.25 for i in range(80)] + values
    assert values_text(moving) == [value_text(v) for v in moving]


STEP_MS = 15_000


def _expected(columns: RangeColumns) -> str:
    series = [
        SeriesResult(lb, columns.times[row], columns.values[i][row])
        for i, (lb, row) in enumerate(zip(columns.labels, columns.present, strict=True))
        if row.any()
    ]
    return f'{{"resultType":"matrix","result":[{series_data(series)}]}}'


def _text(matrix: EncodedMatrix) -> str:
    return b"".join(matrix.data()[0]).decode()


def _columns(columns: RangeColumns, first: int, last: int) -> RangeColumns:
    window = slice(first, last + 1)
    return RangeColumns(
        columns.labels,
        columns.times[window],
        columns.values[:, window],
        columns.present[:, window],
    )


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_matrices_cut_and_joined_read_as_encoded_at_once(data: st.DataObject) -> None:
    labels = sorted(
        set(data.draw(st.lists(labels_st.map(lambda d: tuple(sorted(d.items()))), max_size=6)))
    )
    steps = data.draw(st.integers(1, 8))
    cells = len(labels) * steps
    present = np.array(data.draw(st.lists(st.booleans(), min_size=cells, max_size=cells)))
    values = np.array(data.draw(st.lists(st.floats(width=64), min_size=cells, max_size=cells)))
    times = 1_700_000_000_000 + STEP_MS * np.arange(steps, dtype=np.int64) + 7
    columns = RangeColumns(
        labels, times, values.reshape(len(labels), steps), present.reshape(len(labels), steps)
    )
    whole = encode_matrix(columns, STEP_MS)
    assert _text(whole) == _expected(columns)
    # Steps cut out of an answer, and an answer followed by later steps (series may be in
    # one part only): as if encoded at once.
    first = data.draw(st.integers(0, steps - 1))
    last = data.draw(st.integers(first, steps - 1))
    rows = np.arange(len(whole.labels), dtype=np.int64)
    cut = (
        assemble(whole.labels, whole.heads, [Part(whole, first, last, rows)])
        if whole.labels
        else whole
    )
    if whole.labels:
        assert _text(cut) == _expected(_columns(columns, first, last))
    older = encode_matrix(_columns(columns, 0, first), STEP_MS)
    newer = (
        encode_matrix(_columns(columns, first + 1, steps - 1), STEP_MS)
        if first + 1 < steps
        else None
    )
    kept = Part(older, 0, older.steps - 1, np.arange(len(older.labels), dtype=np.int64))
    joined = _joined(kept, newer)
    assert _text(joined) == _expected(columns)
    # An answer assembled from parts, cut again and followed by later steps, as the next
    # refresh does with a kept answer.
    if joined.labels and joined.steps == steps:
        first = data.draw(st.integers(0, steps - 1))
        last = data.draw(st.integers(first, steps - 1))
        rows = np.arange(len(joined.labels), dtype=np.int64)
        again = _joined(Part(joined, first, last, rows), None)
        assert _text(again) == _expected(_columns(columns, first, last))
        if last + 1 < steps:
            later = encode_matrix(_columns(columns, last + 1, steps - 1), STEP_MS)
            again = _joined(Part(joined, first, last, rows), later)
            assert _text(again) == _expected(_columns(columns, first, steps - 1))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(labels_st, st.floats(width=64)), max_size=8),
    limit=st.integers(0, 9),
)
def test_vectors_read_as_encoded_a_series_at_a_time(
    rows: list[tuple[dict[str, str], float]], limit: int
) -> None:
    at = 1_700_000_000_123
    distinct = {tuple(sorted((k, v) for k, v in row.items() if v)): value for row, value in rows}
    series = [SeriesResult(lb, np.array([at]), np.array([value])) for lb, value in distinct.items()]
    data, truncated = query_data(QueryResult("vector", series, timestamp_ms=at), limit)
    shown = series[:limit] if limit else series
    expected = ",".join(
        f'{{"metric":{json.dumps(dict(s.labels), ensure_ascii=False, separators=(",", ":"))},'
        f'"value":[1700000000.123,"{value_text(float(s.values[0]))}"]}}'
        for s in shown
    )
    assert data == f'{{"resultType":"vector","result":[{expected}]}}'
    assert truncated == (len(shown) < len(series))


@settings(max_examples=40, deadline=None)
@given(
    rounds=st.lists(
        st.lists(st.floats(width=64, allow_nan=False), unique=True, max_size=12), max_size=8
    )
)
def test_printed_values_are_kept_up_to_a_bound(rounds: list[list[float]]) -> None:
    printed = _Texts[int](lambda bits: values_text(np.array(bits).view(np.float64)), kept=6)
    largest = 0
    for values in rounds:
        largest = max(largest, len(values))
        bits = np.unique(np.array(values, dtype=np.float64).view(np.int64))
        got = printed.many(bits.tolist())
        assert got == [value_text(v) for v in bits.view(np.float64).tolist()]
        # One call's values may be more than the bound; never more than that.
        assert len(printed.known) <= max(6, largest)
