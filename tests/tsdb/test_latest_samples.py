"""Each series' newest sample is kept as samples are appended, reopened from blocks and the
log, and read by instant selections instead of the sources whenever it can answer them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.clock import VirtualClock
from tsdb import Store
from tsdb.labels import Matcher
from tsdb.latest import UNKNOWN, LatestSamples

T0 = 1_700_000_000_000
_BATCH = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 4), st.sampled_from([1.0, 2.0, np.nan])),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(_BATCH, min_size=1, max_size=5))
def test_the_newest_sample_wins_and_the_later_write_at_equal_times(
    batches: list[list[tuple[int, int, float]]],
) -> None:
    """Batches may name a series more than once, at any times, in any order."""
    latest = LatestSamples()
    model: dict[int, tuple[int, float]] = {}
    for k, batch in enumerate(batches):
        for i, (sid, t, v) in enumerate(batch):
            value = v + k * 10 + i / 100  # every write has a value of its own
            if sid not in model or t >= model[sid][0]:
                model[sid] = (t, value)
        sids = np.array([s for s, _, _ in batch], dtype=np.int32)
        ts = np.array([t for _, t, _ in batch], dtype=np.int64)
        values = np.array([v + k * 10 + i / 100 for i, (_, _, v) in enumerate(batch)])
        if k % 2 and len(batch) == 1:
            latest.note_one(int(sids[0]), int(ts[0]), float(values[0]))
        else:
            latest.note(sids, ts, values)
    asked = np.arange(2000, dtype=np.int32)  # beyond the ids known: unknown
    t, v = latest.get(asked)
    for sid in range(2000):
        if sid in model:
            assert int(t[sid]) == model[sid][0]
            assert np.array_equal(v[sid], model[sid][1], equal_nan=True)
        else:
            assert t[sid] == UNKNOWN


def test_forgetting_makes_only_the_older_newest_samples_unknown() -> None:
    latest = LatestSamples()
    latest.note(np.array([1, 2], np.int32), np.array([10, 30], np.int64), np.array([1.0, 2.0]))
    latest.forget(np.array([1, 2, 5000], np.int32), upto=20)
    t, _ = latest.get(np.array([1, 2], np.int32))
    assert t.tolist() == [UNKNOWN, 30]


def _newest(store: Store, start: int, end: int) -> list[tuple[int, float]]:
    got = store.select_coded([Matcher.parse("__name__", "=", "m")], start, end, newest=True)
    return list(zip(got.timestamps.tolist(), got.values.tolist(), strict=True))


def _last_of_each(store: Store, start: int, end: int) -> list[tuple[int, float]]:
    got = store.select_coded([Matcher.parse("__name__", "=", "m")], start, end)
    return [(int(got.timestamps[b - 1]), float(got.values[b - 1])) for b in got.ends.tolist()]


def test_instant_reads_after_reopening_and_a_back_fill(
    open_store: Callable[..., Store], clock: VirtualClock
) -> None:
    """Blocks, then the log, then samples written into the past (a history back-fill) and
    a scrape ahead of the read's time: every instant read agrees with the last row of a
    range read."""
    store = open_store(head_max_samples=1_000)
    refs = np.array([store.ref({"__name__": "m", "i": str(i)}) for i in range(50)], np.int32)
    # Ten more series end early: all their samples are in blocks when the store reopens.
    early = np.array([store.ref({"__name__": "m", "e": str(i)}) for i in range(10)], np.int32)
    for k in range(30):  # sealed into blocks every 1,000 samples; the rest stays in the log
        store.append_batch(refs, T0 + k * 15_000, np.full(50, float(k)))
        if k < 10:
            store.append_batch(early, T0 + k * 15_000, np.full(10, float(k)))
    store.flush()
    store.close()
    store = open_store(head_max_samples=1_000)
    # Back-filled: older than what is there for half the series, newer for two of them.
    store.append_batch(refs[:25], T0 + 5 * 15_000 + 1, np.full(25, -1.0))
    store.append_batch(refs[:2], T0 + 40 * 15_000, np.full(2, 99.0))
    store.append_batch(early, T0 + 3 * 15_000 + 1, np.full(10, -2.0))
    for end in (T0 + 29 * 15_000, T0 + 40 * 15_000, T0 + 9 * 15_000 + 7, T0 + 5 * 15_000 + 1):
        start = end - 300_000
        assert _newest(store, start, end) == _last_of_each(store, start, end), end
    assert _newest(store, T0 + 29 * 15_000, T0 + 29 * 15_000)[:3] == [
        (T0 + 29 * 15_000, 29.0),
        (T0 + 29 * 15_000, 29.0),
        (T0 + 29 * 15_000, 29.0),
    ]


def test_a_later_write_at_the_same_time_is_read(open_store: Callable[..., Store]) -> None:
    store = open_store()
    ref = store.ref({"__name__": "m"})
    store.append(ref, T0, 1.0)
    store.append(ref, T0, 2.0)
    assert _newest(store, T0 - 1, T0) == [(T0, 2.0)]
    store._cut()
    store.append_batch(np.array([ref], np.int32), T0, np.array([3.0]))
    assert _newest(store, T0 - 1, T0) == [(T0, 3.0)]
