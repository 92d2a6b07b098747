"""runtime.gcpause.StaysTracked: a big dict that, once frozen, young collections never walk
again, where a plain dict of untracked things leaves the collector and comes back young; the
series index and the remote writer's series names keep theirs so."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.clock import VirtualClock
from runtime.gcpause import StaysTracked
from tsdb import Store, StoreSettings
from tsdb.index import SeriesIndex
from tsdb.wal_tail import SeriesNames

BIG = 5_000


def _young(obj: Any) -> bool:
    return any(o is obj for g in (0, 1) for o in gc.get_objects(g))


def _big_young() -> list[int]:
    """Sizes of the young dicts with ``BIG`` entries or more."""
    return [
        len(o) for g in (0, 1) for o in gc.get_objects(g) if isinstance(o, dict) and len(o) >= BIG
    ]


def _fresh(name: str) -> tuple[tuple[str, str], ...]:
    # Built at run time: a new tuple is tracked until a collection looks at it.
    return (("__name__", "up"), ("pod", name))


def _filled(kind: type[dict[Any, int]]) -> dict[Any, int]:
    d = kind()
    for i in range(BIG):
        d[_fresh(f"p{i}")] = i
    return d


def _collect_fully() -> None:
    # The first collection untracks the inner tuples, the next their outer ones, the
    # third the dicts that hold only those.
    for _ in range(3):
        gc.collect()


@pytest.fixture
def frozen() -> Iterator[None]:
    """``gc.freeze`` as the service calls it, undone afterwards."""
    try:
        yield
    finally:
        gc.unfreeze()


def test_a_plain_dict_of_untracked_things_comes_back_young_after_a_full_collection() -> None:
    d = _filled(dict)
    _collect_fully()
    assert not gc.is_tracked(d)
    d[_fresh("new")] = -1
    assert gc.is_tracked(d) and _young(d)


def test_a_frozen_dict_that_stays_tracked_is_never_young_again(frozen: None) -> None:
    d = _filled(StaysTracked)
    _collect_fully()
    assert gc.is_tracked(d)
    gc.freeze()
    for i in range(10):
        d[_fresh(f"new{i}")] = -i
        gc.collect(1)
    assert gc.is_tracked(d) and not _young(d)
    assert d[_fresh("new3")] == -3 and len(d) == BIG + 10


def test_new_series_bring_none_of_a_frozen_index_back_among_the_young(frozen: None) -> None:
    index = SeriesIndex()
    for i in range(BIG):
        index.add(_fresh(f"p{i}"))
    _collect_fully()
    gc.freeze()
    index.add(_fresh("late"))
    assert _big_young() == []
    assert index.get(_fresh("late")) == BIG


def test_series_names_read_later_bring_none_back_among_the_young(
    tmp_path: Path, frozen: None
) -> None:
    store = Store(StoreSettings(data_dir=tmp_path), VirtualClock(0.0))
    try:
        for i in range(BIG):
            store.append({"__name__": "up", "pod": f"p{i}"}, 0, 1.0)
        store.flush()
        names = SeriesNames(tmp_path)
        names.resolve(np.array([0], dtype=np.int32))
        _collect_fully()
        gc.freeze()
        late = store.ref({"__name__": "up", "pod": "late"})
        store.flush()
        assert names.resolve(np.array([late], dtype=np.int32)) == []
        assert _big_young() == []
    finally:
        store.close()
