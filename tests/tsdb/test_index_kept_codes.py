"""The label codes of a kept selection are kept with it, and never outlive what it names."""

from __future__ import annotations

import numpy as np
import pytest

from tsdb.index import SeriesIndex
from tsdb.labels import Matcher, MatchType, make_labels

UP = [Matcher(MatchType.EQUAL, "__name__", "up")]


def _jobs(index: SeriesIndex, ids: np.ndarray) -> list[str]:
    names, codes = index.label_codes(ids)
    return [index.strings.value(int(c)) for c in codes[:, names.index("job")].tolist()]


def test_a_kept_selection_reads_its_codes_once() -> None:
    index = SeriesIndex()
    for job in ("a", "b"):
        index.add(make_labels({"__name__": "up", "job": job}))
    ids = index.select(UP)
    names, codes = index.label_codes(ids)
    again_names, again = index.label_codes(ids)
    assert again is codes and again_names == names == ["__name__", "job"]
    with pytest.raises(ValueError, match="read-only"):
        codes[0, 0] = 0
    # Not the kept array (equal ids): its own matrix, the caller's to change.
    copy = index.label_codes(ids.copy())[1]
    assert copy is not codes and copy.flags.writeable


def test_kept_codes_follow_series_added_and_removed() -> None:
    index = SeriesIndex()
    a = index.add(make_labels({"__name__": "up", "job": "a"}))
    index.add(make_labels({"__name__": "up", "job": "b"}))
    assert _jobs(index, index.select(UP)) == ["a", "b"]
    index.add(make_labels({"__name__": "up", "job": "c", "x": "1"}))
    index.add(make_labels({"__name__": "down", "job": "d"}))
    assert _jobs(index, index.select(UP)) == ["a", "b", "c"]
    index.remove([a])
    assert _jobs(index, index.select(UP)) == ["b", "c"]
