"""Series created many at once are indexed exactly as series created one by one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.clock import VirtualClock
from tsdb import Matcher, Store, StoreSettings, make_labels
from tsdb.index import SeriesIndex
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


def _seeded(first: list[Labels]) -> Store:
    """A store holding the series ``first``, made one by one."""
    store = _store()
    for lb in first:
        store.ref(lb)
    return store


def _same_label_codes(got: Store, want: Store) -> None:
    """Both indexes hold the same label names and values for every series id."""
    ids = np.arange(len(want._index), dtype=np.int32)
    got_names, got_codes = got._index.label_codes(ids)
    want_names, want_codes = want._index.label_codes(ids)
    assert got_names == want_names
    assert [[got.strings.value(int(c)) for c in row] for row in got_codes] == [
        [want.strings.value(int(c)) for c in row] for row in want_codes
    ]


@settings(max_examples=60, deadline=None)
@given(first=st.lists(labels_st, max_size=20), batch=st.lists(labels_st, max_size=60))
def test_many_at_once_equal_one_by_one(first: list[Labels], batch: list[Labels]) -> None:
    one, many = _seeded(first), _seeded(first)
    expected = [one.ref(lb) for lb in batch]
    assert many.refs(batch).tolist() == expected
    for matchers in MATCHERS:
        assert many.series(matchers) == one.series(matchers)
    assert many.label_names() == one.label_names()
    for name in ("__name__", "pod", "zone", "x"):
        assert many.label_values(name) == one.label_values(name)
    _same_label_codes(many, one)
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


def _coded(store: Store, batch: list[Labels]) -> tuple[list[str], np.ndarray]:
    """The batch as a code matrix the way a query gives it: store codes for values the store
    knows, a negative code of their own for the others."""
    names = sorted({k for lb in batch for k, _ in lb})
    made_up: dict[str, int] = {}
    codes = np.zeros((len(batch), len(names)), dtype=np.int32)
    for i, lb in enumerate(batch):
        for k, v in lb:
            known = store.strings.find(v)
            codes[i, names.index(k)] = (
                known if known is not None else made_up.setdefault(v, -1 - len(made_up))
            )
    return names, codes


@settings(max_examples=60, deadline=None)
@given(first=st.lists(labels_st, max_size=20), batch=st.lists(labels_st, max_size=60))
def test_many_by_codes_equal_many_by_tuples(first: list[Labels], batch: list[Labels]) -> None:
    by_tuples, by_codes = _seeded(first), _seeded(first)
    names, codes = _coded(by_codes, batch)
    made = by_codes.refs_coded(batch, names, codes, by_codes.strings)
    assert made.tolist() == by_tuples.refs(batch).tolist()
    for matchers in MATCHERS:
        assert by_codes.series(matchers) == by_tuples.series(matchers)
    _same_label_codes(by_codes, by_tuples)
    ids = range(len(by_tuples._index))
    assert [by_codes.labels(i) for i in ids] == [by_tuples.labels(i) for i in ids]


def test_codes_of_other_strings_are_not_read() -> None:
    store, other = _store(), _store()
    other.ref(make_labels({"__name__": "up", "pod": "x"}))
    batch = [make_labels({"__name__": "up", "pod": "a"})]
    names, codes = _coded(other, batch)
    store.refs_coded(batch, names, codes, other.strings)
    assert store.series([Matcher.parse("pod", "=", "a")]) == batch


def test_a_batch_tells_whether_the_store_holds_its_metrics() -> None:
    store = _seeded([make_labels({"__name__": "up", "pod": "cpu"})])
    index = store._index

    def holds_none(batch: list[Labels]) -> bool:
        return index.holds_none_of(batch, *_coded(store, batch))

    # "cpu" is a known string (a pod) but no metric; "rec" is not known at all.
    assert holds_none([make_labels({"__name__": "cpu", "pod": "a"})])
    assert holds_none([make_labels({"__name__": "rec", "pod": "a"})])
    assert not holds_none(
        [make_labels({"__name__": "rec", "pod": "a"}), make_labels({"__name__": "up", "pod": "b"})]
    )
    # Without a metric name the codes cannot tell.
    assert not holds_none([make_labels({"pod": "a"})])
    # A batch's first output of its metric made, the next finds it.
    batch = [make_labels({"__name__": "rec", "pod": p}) for p in "ab"]
    first = store.refs_coded(batch, *_coded(store, batch), store.strings)
    assert not holds_none(batch)
    assert store.refs_coded(batch, *_coded(store, batch), store.strings).tolist() == first.tolist()


@settings(max_examples=60, deadline=None)
@given(first=st.lists(labels_st, max_size=20), batch=st.lists(labels_st, max_size=60, unique=True))
def test_a_batch_said_distinct_is_made_as_any_other(
    first: list[Labels], batch: list[Labels]
) -> None:
    checked, trusted = _seeded(first), _seeded(first)
    made = trusted.refs_coded(batch, *_coded(trusted, batch), trusted.strings, distinct=True)
    assert made.tolist() == checked.refs(batch).tolist()
    assert trusted.refs(batch, distinct=True).tolist() == made.tolist()
    _same_label_codes(trusted, checked)


def test_many_label_sets_without_labels_are_registered() -> None:
    # No label pairs at all: nothing to add to the postings, and the ids still given.
    index = SeriesIndex()
    assert index.add_many([()]).tolist() == [0]
    assert index.add_many([(("__name__", "up"),)]).tolist() == [1]
    assert index.get(()) == 0
