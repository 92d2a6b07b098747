"""A numpy view that outlives its read must not break the next series' creation."""

from __future__ import annotations

import numpy as np

from tsdb.index import SeriesIndex
from tsdb.labels import make_labels


def test_add_while_a_view_pins_the_postings() -> None:
    index = SeriesIndex()
    first = index.add(make_labels({"__name__": "up", "job": "a"}))
    pinned = np.frombuffer(index._postings_of("job")["a"], dtype=np.int32)
    pinned_all = index._all.view()
    second = index.add(make_labels({"__name__": "up", "job": "a", "x": "1"}))
    assert pinned.tolist() == [first] and pinned_all.tolist() == [first]
    assert index.get(make_labels({"__name__": "up", "job": "a", "x": "1"})) == second
    assert index.all_ids().tolist() == [first, second]


def test_add_while_views_pin_the_label_codes() -> None:
    index = SeriesIndex()
    first = index.add(make_labels({"__name__": "up", "job": "a"}))
    pins = [
        getattr(index, name).view()
        for name in ("_pair_names", "_pair_values", "_pair_start", "_schema_of")
    ]
    second = index.add(make_labels({"__name__": "up", "job": "b"}))
    names, codes = index.label_codes(np.array([first, second], dtype=np.int32))
    assert names == ["__name__", "job"]
    assert [index.strings.values()[c] for c in codes[:, 1].tolist()] == ["a", "b"]
    assert all(len(p) for p in pins)


def test_add_many_while_a_view_pins_the_postings() -> None:
    index = SeriesIndex()
    first = index.add(make_labels({"__name__": "up", "job": "a"}))
    pinned = np.frombuffer(index._postings_of("job")["a"], dtype=np.int32)
    made = index.add_many(
        [make_labels({"__name__": "up", "job": "a", "x": str(i)}) for i in range(3)]
        + [make_labels({"__name__": "up", "job": "b"})]
    )
    assert pinned.tolist() == [first]
    assert np.frombuffer(index._postings_of("job")["a"], dtype=np.int32).tolist() == [
        first,
        *made[:3].tolist(),
    ]
    assert index._postings_of("job")["b"].tolist() == [int(made[3])]
    assert index._postings_of("__name__")["up"].tolist() == [first, *made.tolist()]


def test_add_many_extends_the_postings_after_a_pinned_one() -> None:
    index = SeriesIndex()
    old = [index.add(make_labels({"__name__": "up", "job": job})) for job in "abc"]
    # The first of the three in order is pinned: the two after it are extended all the same.
    pinned = np.frombuffer(index._postings_of("job")["a"], dtype=np.int32)
    made = index.add_many([make_labels({"__name__": "up", "job": job, "x": "1"}) for job in "abc"])
    assert pinned.tolist() == [old[0]]
    for job, before, sid in zip("abc", old, made.tolist(), strict=True):
        assert index._postings_of("job")[job].tolist() == [before, sid]
