"""Forgetting series leaves the index as if the survivors alone had been added."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tsdb.test_index_batch import MATCHERS as BATCH_MATCHERS
from tests.tsdb.test_index_batch import labels_st
from tsdb import Matcher, make_labels
from tsdb.index import SeriesIndex
from tsdb.labels import Labels

# The label sets and matchers of the batch-creation tests, and two more matchers.
MATCHERS = [
    *BATCH_MATCHERS,
    [Matcher.parse("zone", "!~", "z.*")],
    [Matcher.parse("pod", "=", "b"), Matcher.parse("zone", "=", "z1")],
]


def _described(index: SeriesIndex, sids: list[int]) -> list[list[str]]:
    ids = np.array(sids, dtype=np.int32)
    names, codes = index.label_codes(ids)
    value = index.strings.value
    return [[f"{n}={value(int(c))}" for n, c in zip(names, row, strict=True)] for row in codes]


@settings(max_examples=80, deadline=None)
@given(
    sets=st.lists(labels_st, min_size=1, max_size=60, unique=True),
    rounds=st.lists(st.lists(st.integers(0, 59), max_size=30), min_size=1, max_size=4),
    later=st.lists(labels_st, max_size=10),
)
def test_remove_equals_building_from_the_survivors(
    sets: list[Labels], rounds: list[list[int]], later: list[Labels]
) -> None:
    index = SeriesIndex()
    index.add_many(sets)
    alive = dict(enumerate(sets))
    for victims in rounds:
        # Selections kept from before a removal must not name forgotten series.
        for matchers in MATCHERS:
            index.select(matchers)
        gone = sorted({sid for sid in victims if sid in alive})
        index.remove(gone)
        for sid in gone:
            alive.pop(sid)
    for lb in later:
        if index.get(lb) is None:
            alive[index.add(lb)] = lb
    fresh = SeriesIndex()
    order = sorted(alive)
    fresh_ids = {fresh.add(alive[sid]): sid for sid in order}
    assert sorted(index.all_ids().tolist()) == order
    for matchers in MATCHERS:
        got = index.select(matchers).tolist()
        assert got == sorted(fresh_ids[s] for s in fresh.select(matchers).tolist())
    for name in ("__name__", "pod", "zone", "x"):
        assert index.label_values(name) == fresh.label_values(name)
    assert index.label_names() == fresh.label_names()
    assert _described(index, order) == _described(fresh, sorted(fresh_ids))
    assert [index.get(alive[s]) for s in order] == order


def test_forgotten_pairs_are_compacted_away() -> None:
    index = SeriesIndex()
    made = index.add_many(
        [make_labels({"__name__": "m", "pod": f"p{i}", "zone": "z"}) for i in range(100)]
    )
    index.remove(made[:90].tolist())
    # Three pairs each for the ten left: the forgotten ninety's are gone.
    assert len(index._pair_names) == 30
    assert _described(index, made[90:].tolist())[0] == ["__name__=m", "pod=p90", "zone=z"]
    assert index.label_values("pod") == sorted(f"p{i}" for i in range(90, 100))


def test_series_added_one_by_one_share_their_pairs_until_the_last_goes() -> None:
    index = SeriesIndex()
    # Label values made at run time, as a scrape's parser makes them: equal, not the same.
    pod = "".join(["web", "-0"])
    a = index.add(make_labels({"__name__": "up", "pod": pod}))
    b = index.add(make_labels({"__name__": "cpu", "pod": "".join(["web", "-0"])}))
    pair_a = index.labels(a)[1]
    assert index.labels(b)[1] is pair_a
    index.remove([a])
    assert index.labels(b)[1] is pair_a
    index.remove([b])
    c = index.add(make_labels({"__name__": "up", "pod": pod}))
    # The pair's last series went with it: a new one is made, not the old one kept.
    assert index.labels(c)[1] == pair_a and index.labels(c)[1] is not pair_a
