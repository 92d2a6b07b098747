"""A numpy view that outlives its read must not break the next series' creation."""

from __future__ import annotations

import numpy as np

from tsdb.index import SeriesIndex
from tsdb.labels import make_labels


def test_add_while_a_view_pins_the_postings() -> None:
    index = SeriesIndex()
    first = index.add(make_labels({"__name__": "up", "job": "a"}))
    pinned = np.frombuffer(index._postings["job"]["a"], dtype=np.int32)
    pinned_all = np.frombuffer(index._all, dtype=np.int32)
    second = index.add(make_labels({"__name__": "up", "job": "a", "x": "1"}))
    assert pinned.tolist() == [first] and pinned_all.tolist() == [first]
    assert index.get(make_labels({"__name__": "up", "job": "a", "x": "1"})) == second
    assert index.all_ids().tolist() == [first, second]
