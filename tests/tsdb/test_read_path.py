"""The read path gives what was written, whichever way it finds rows: binary search, the
dense offset, the block's table of ids; disjoint blocks merged without a sort, overlapping
ones sorted, the newest sample read newest block first."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings
from tsdb.arrays import Column, distinct, distinct_inverse, position, windows
from tsdb.block import build_block
from tsdb.gather import _rows
from tsdb.labels import Matcher

T0 = 1_700_000_000_000


@settings(max_examples=60, deadline=None)
@given(
    present=st.lists(st.integers(0, 400), min_size=1, max_size=120, unique=True),
    wanted=st.lists(st.integers(0, 450), max_size=200, unique=True),
    base=st.sampled_from([0, 63, 64, 1_000_003]),
)
def test_rows_of_agree_whichever_way_ids_are_found(
    present: list[int], wanted: list[int], base: int
) -> None:
    ids = np.array(sorted(present), dtype=np.int32) + base
    sids = np.repeat(ids, 2)
    ts = np.tile(np.array([T0, T0 + 1000], dtype=np.int64), len(ids))
    query = np.array(sorted(wanted), dtype=np.int32) + base
    expected = [(i, 2 * present_at, 2 * present_at + 2) for i, present_at in _hits(ids, query)]
    # A binary search each, then the table of ids once it is made (by a large selection).
    block = build_block(1, sids, ts, np.arange(len(sids), dtype=np.float64))
    for _ in range(2):
        pos, lo, hi = block.rows_of(query)
        assert list(zip(pos.tolist(), lo.tolist(), hi.tolist(), strict=True)) == expected
        block.rows_of(np.arange(base, base + 3000, dtype=np.int32))


def _hits(ids: np.ndarray, query: np.ndarray) -> list[tuple[int, int]]:
    where = {int(sid): k for k, sid in enumerate(ids.tolist())}
    return [(i, where[int(q)]) for i, q in enumerate(query.tolist()) if int(q) in where]


@settings(max_examples=25, deadline=None)
@given(
    windows=st.lists(
        st.tuples(st.integers(0, 5), st.one_of(st.just(1.0), st.floats(0.1, 1.0))),
        min_size=1,
        max_size=5,
    ),
    late=st.booleans(),
    in_head=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_selection_over_many_series_and_blocks(
    windows: list[tuple[int, float]], late: bool, in_head: bool, seed: int
) -> None:
    """3,000 series (enough for the blocks' tables of ids), each present in a random share of
    blocks; blocks one after another, the last window possibly still in the head, or a
    late write into an earlier window."""
    rng = np.random.default_rng(seed)
    store = Store(
        StoreSettings(head_max_samples=100_000, max_series=10_000),
        VirtualClock(T0 / 1000),
        persistent=False,
    )
    n = 3000
    refs = np.array([store.ref({"__name__": "m", "i": str(i)}) for i in range(n)], np.int32)
    model: dict[int, dict[int, float]] = {}
    for k, (window, share) in enumerate(windows):
        ts = T0 + window * 600_000 + k * 1000
        chosen = np.flatnonzero(rng.random(n) < share)
        values = rng.random(len(chosen))
        store.append_batch(refs[chosen], ts, values)
        for i, v in zip(chosen.tolist(), values.tolist(), strict=True):
            model.setdefault(int(refs[i]), {})[ts] = v
        if k < len(windows) - 1 or not in_head:
            store._cut()
    if late:
        # Into the head, at a time already sealed in a block: the sources overlap.
        ts = T0 + windows[0][0] * 600_000
        chosen = np.flatnonzero(rng.random(n) < 0.3)
        values = rng.random(len(chosen))
        store.append_batch(refs[chosen], ts, values)
        for i, v in zip(chosen.tolist(), values.tolist(), strict=True):
            model.setdefault(int(refs[i]), {})[ts] = v
    matcher = [Matcher.parse("__name__", "=", "m")]
    for lo, hi in ((T0, T0 + 4_000_000), (T0 + 600_000, T0 + 1_300_000)):
        expected = {
            sid: sorted((t, v) for t, v in samples.items() if lo <= t <= hi)
            for sid, samples in model.items()
        }
        expected = {sid: rows for sid, rows in expected.items() if rows}
        got = store.select_coded(matcher, lo, hi)
        newest = store.select_coded(matcher, lo, hi, newest=True)
        labels = store.select_columns(matcher, lo, hi).labels
        sids = [store.ref(lb) for lb in labels]
        assert sids == sorted(expected)
        runs = {
            sid: list(
                zip(
                    got.timestamps[a:b].tolist(),
                    got.values[a:b].tolist(),
                    strict=True,
                )
            )
            for sid, a, b in zip(sids, got.starts.tolist(), got.ends.tolist(), strict=True)
        }
        assert runs == expected
        assert newest.timestamps.tolist() == [expected[sid][-1][0] for sid in sids]
        assert newest.values.tolist() == [expected[sid][-1][1] for sid in sids]


def test_windows_are_the_sliding_windows() -> None:
    a = np.arange(20, dtype=np.uint32)
    for source in (a, a[::2], a[3:]):
        for width in (1, 3, len(source)):
            assert np.array_equal(windows(source, width), sliding_window_view(source, width))
    assert not windows(a, 2).flags.writeable


def test_distinct_is_numpy_unique_by_a_sort() -> None:
    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 50, 5_000):
        for dtype in (np.int32, np.int64, np.float64):
            a = rng.integers(-20, 40, n).astype(dtype)
            got = distinct(a)
            assert got.dtype == a.dtype
            assert np.array_equal(got, np.unique(a))


def test_distinct_inverse_is_numpy_unique_with_its_inverse() -> None:
    rng = np.random.default_rng(8)
    for n in (0, 1, 2, 50, 5_000):
        for dtype in (np.int32, np.int64):
            # Codes of a narrow range (marked in a table) and of a wide one (sorted).
            for high in (40, 2**30):
                a = rng.integers(-20, high, n).astype(dtype)
                values, inverse = distinct_inverse(a)
                expected, expected_inverse = np.unique(a, return_inverse=True)
                assert values.dtype == a.dtype
                assert np.array_equal(values, expected)
                assert np.array_equal(inverse, expected_inverse.reshape(n))


def test_a_column_view_stays_as_it_was_while_the_column_grows() -> None:
    column = Column(np.int64, [0])
    views = []
    for i in range(1, 200):
        views.append(column.view())
        column.extend((i,) if i % 3 else np.arange(i, i + 1))
    assert column.view().tolist() == list(range(200))
    assert all(v.tolist() == list(range(len(v))) for v in views)
    assert [len(v) for v in views] == list(range(1, 200))
    assert column.last() == 199 and len(column) == 200
    assert not column.view().flags.writeable


@settings(max_examples=80, deadline=None)
@given(
    first=st.integers(0, 20),
    gaps=st.lists(st.integers(1, 6), max_size=30),
    even=st.booleans(),
    width=st.integers(1, 5),
    spare=st.integers(0, 3),
)
def test_a_parts_rows_are_its_runs_whether_evenly_spaced_or_not(
    first: int, gaps: list[int], even: bool, width: int, spare: int
) -> None:
    # Evenly spaced runs are read through a strided view, others gathered: the same rows.
    if even and gaps:
        gaps = [gaps[0]] * len(gaps)
    lo = first + np.concatenate(([0], np.cumsum(gaps))).astype(np.int64)
    values = np.arange(int(lo[-1]) + width + spare, dtype=np.float64) * 1.5
    got = _rows(values, lo, width)
    assert got.tolist() == [values[a : a + width].tolist() for a in lo.tolist()]
    assert not got.flags.writeable or not np.shares_memory(got, values)


@given(
    ids=st.lists(st.integers(0, 2**31 - 2), max_size=30).map(sorted),
    value=st.integers(0, 2**31 - 1),
    side=st.sampled_from(["left", "right"]),
)
def test_position_is_where_numpy_puts_the_value(
    ids: list[int], value: int, side: Literal["left", "right"]
) -> None:
    for dtype in (np.int32, np.int64, np.uint64):
        a: npt.NDArray[np.integer] = np.array(ids, dtype=dtype)
        assert position(a, value, side) == int(np.searchsorted(a, value, side=side))
