"""Series created many at once are indexed exactly as series created one by one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.clock import VirtualClock
from tsdb import Matcher, Store, StoreSettings, make_labels
from tsdb.labels import InvalidLabels, Labels
from tsdb.store import SeriesLimitExceeded

labels_st = st.builds(
    lambda name, pod, zone, extra: make_labels(
        {"__name__": name, "pod": pod, "zone": zone, **({"x": "1"} if extra else {})}
    ),
    st.sampled_from(["cpu", "mem", "up"]),
    st.sampled_from(["a", "b", "c", "d", "e"]),
    st.sampled_from(["", "z1", "z2"]),
    st.booleans(),
)
MATCHERS = [
    [Matcher.parse("__name__", "=", "cpu")],
    [Matcher.parse("pod", "=~", "a|c")],
    [Matcher.parse("zone", "=", "")],
    [Matcher.parse("x", "!=", "1"), Matcher.parse("__name__", "!=", "up")],
]


def _store(max_series: int = 1_000_000) -> Store:
    return Store(StoreSettings(max_series=max_series), VirtualClock(0.0), persistent=False)


@settings(max_examples=60, deadline=None)
@given(first=st.lists(labels_st, max_size=20), batch=st.lists(labels_st, max_size=60))
def test_many_at_once_equal_one_by_one(first: list[Labels], batch: list[Labels]) -> None:
    one, many = _store(), _store()
    for lb in first:
        one.ref(lb)
        many.ref(lb)
    expected = [one.ref(lb) for lb in batch]
    assert many.refs(batch).tolist() == expected
    for matchers in MATCHERS:
        assert many.series(matchers) == one.series(matchers)
    assert many.label_names() == one.label_names()
    for name in ("__name__", "pod", "zone", "x"):
        assert many.label_values(name) == one.label_values(name)
    ids = np.arange(len(one._index), dtype=np.int32)
    assert many._index.label_codes(ids)[0] == one._index.label_codes(ids)[0]
    decoded = [[many.strings.value(int(c)) for c in row] for row in many._index.label_codes(ids)[1]]
    assert decoded == [
        [one.strings.value(int(c)) for c in row] for row in one._index.label_codes(ids)[1]
    ]
    # Series created one by one after a batch are indexed as well.
    late = make_labels({"__name__": "late", "pod": "a"})
    assert many.ref(late) == one.ref(late)
    assert many.series([Matcher.parse("pod", "=", "a")]) == one.series(
        [Matcher.parse("pod", "=", "a")]
    )


def test_an_invalid_label_set_creates_nothing() -> None:
    store = _store()
    good = make_labels({"__name__": "up", "pod": "a"})
    with pytest.raises(InvalidLabels, match="invalid metric name"):
        store.refs([good, make_labels({"__name__": "1up", "pod": "a"})])
    with pytest.raises(InvalidLabels, match="invalid label name"):
        store.refs([good, make_labels({"__name__": "up", "pod-name": "a"})])
    assert store.stats().series == 0
    assert store.refs([good, good]).tolist() == [0, 0]


def test_the_series_limit_holds_for_many_at_once() -> None:
    store = _store(max_series=3)
    store.refs([make_labels({"__name__": "up", "pod": p}) for p in "ab"])
    with pytest.raises(SeriesLimitExceeded):
        store.refs([make_labels({"__name__": "up", "pod": p}) for p in "cde"])
    assert store.stats().series == 3
