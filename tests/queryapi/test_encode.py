"""Answers encoded a column at a time read as those encoded a series at a time."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from promql.labelsets import LabelTable, Strings
from queryapi.encode import metric_texts, value_text, values_text
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
        ),
        max_size=30,
    )
)
def test_values_text_prints_each_as_value_text(values: list[float]) -> None:
    assert values_text(values) == [value_text(v) for v in values]
