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
from tsdb.latest import LOST, NONE, LatestSamples

T0 = 1_700_000_000_000
_BATCH = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 4), st.sampled_from([1.0, 2.0, np.nan])),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(_BATCH, min_size=1, max_size=5))
def test_the_two_newest_samples_and_the_later_write_at_equal_times(
    batches: list[list[tuple[int, int, float]]],
) -> None:
    """Batches may name a series more than once, at any times, in any order."""
    latest = LatestSamples()
    model: dict[int, dict[int, float]] = {}
    for k, batch in enumerate(batches):
        values = [v + k * 10 + i / 100 for i, (_, _, v) in enumerate(batch)]  # each its own
        for (sid, t, _), value in zip(batch, values, strict=True):
            model.setdefault(sid, {})[t] = value
        sids = np.array([s for s, _, _ in batch], dtype=np.int32)
        ts = np.array([t for _, t, _ in batch], dtype=np.int64)
        if k % 2 and len(batch) == 1:
            latest.note_one(int(sids[0]), int(ts[0]), values[0])
        else:
            latest.note(sids, ts, np.array(values))
    asked = np.arange(2000, dtype=np.int32)  # beyond the ids known: none
    t, v, t0, v0 = latest.get(asked)
    for sid in range(2000):
        times = sorted(model.get(sid, {}), reverse=True)
        expected = ([(tt, model[sid][tt]) for tt in times[:2]] + [(NONE, None)] * 2)[:2]
        for (et, ev), gt, gv in zip(expected, (t[sid], t0[sid]), (v[sid], v0[sid]), strict=True):
            assert int(gt) == et, sid
            if ev is not None:
                assert np.array_equal(gv, ev, equal_nan=True), sid


def test_forgetting_loses_only_samples_at_or_before_the_time() -> None:
    latest = LatestSamples()
    latest.note(np.array([1, 2], np.int32), np.array([10, 30], np.int64), np.array([1.0, 2.0]))
    latest.note(np.array([2], np.int32), np.array([40], np.int64), np.array([3.0]))
    latest.forget(np.array([1, 2, 5000], np.int32), upto=30)
    t, _, t0, _ = latest.get(np.array([1, 2], np.int32))
    assert t.tolist() == [LOST, 40]
    assert t0.tolist() == [NONE, LOST]
    # Written into the past of a lost sample: not taken as the previous one.
    latest.note(np.array([2], np.int32), np.array([35], np.int64), np.array([9.0]))
    assert latest.get(np.array([2], np.int32))[2].tolist() == [LOST]


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
    ends = (29 * 15_000, 28 * 15_000 + 7, 39 * 15_000, 40 * 15_000, 9 * 15_000 + 7, 5 * 15_000 + 1)
    for end in (T0 + e for e in ends):
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


def _one(store: Store, ref: int, t: int, v: float) -> None:
    store.append_batch(np.array([ref], np.int32), np.array([t], np.int64), np.array([v]))


_TIERS = {
    "block_duration_minutes": 60,
    "raw_retention_hours": 1,
    "minute_retention_days": 1,
    "five_minute_retention_days": 2,
}


def test_downsampling_loses_the_previous_sample_for_reads_too(
    open_store: Callable[..., Store], clock: VirtualClock
) -> None:
    """Downsampling keeps each minute's last sample: a read between a series' last two raw
    samples must then see what the blocks hold, as a range read does."""
    store = open_store(**_TIERS)
    ref = store.ref({"__name__": "m"})
    start = int(clock.now() * 1000) // 3_600_000 * 3_600_000
    ts = start + np.arange(0, 3600, 10, dtype=np.int64) * 1000
    store.append_batch(np.full(len(ts), ref, np.int32), ts, np.arange(len(ts), dtype=float))
    store._cut()
    clock.advance(3 * 3600)
    store.maintain()
    end = int(ts[-1]) - 5_000  # between the last two raw samples, in one minute
    assert _newest(store, end - 300_000, end) == _last_of_each(store, end - 300_000, end)
    assert _newest(store, end - 300_000, end)[0][0] < int(ts[-2])


def test_a_back_fill_after_a_lost_newest_sample_is_not_taken_for_the_newest(
    open_store: Callable[..., Store], clock: VirtualClock
) -> None:
    """Retention deletes the block holding a series' newest sample while an older block,
    downsampled, keeps an older one; a back-fill older still is not the newest."""
    store = open_store(**_TIERS)
    m, other = store.ref({"__name__": "m"}), store.ref({"__name__": "other"})
    base = int(clock.now() * 1000) // 3_600_000 * 3_600_000
    minute = 60_000
    store.append_batch(
        np.array([m, other], np.int32),
        np.array([base + 10 * minute, base + 50 * minute]),
        np.array([1.5, 7.0]),
    )
    store._cut()  # m at 10 min, kept (downsampled): the other series holds it to 50 min
    _one(store, m, base + 20 * minute, 2.0)
    store._cut()  # m at 20 min: deleted
    clock.advance((base + 2 * 86_400_000 + 30 * minute) / 1000 - clock.now())
    store.maintain()
    _one(store, m, base + 5 * minute, -1.0)
    assert _newest(store, base, base + 3_600_000) == _last_of_each(store, base, base + 3_600_000)
    assert _newest(store, base, base + 3_600_000) == [(base + 10 * minute, 1.5)]


def test_a_merge_past_a_block_written_between_agrees_with_range_reads(
    open_store: Callable[..., Store], clock: VirtualClock
) -> None:
    """Two writes of one sample in two blocks, a third block between them in write order
    downsampled apart: merging the first with another of its tier would change which write
    wins, so they stay apart, and reads keep the later write, before and after reopening."""
    store = open_store(**_TIERS)
    m, r, q = (store.ref({"__name__": name}) for name in ("m", "r", "q"))
    day, minute = 86_400_000, 60_000
    midnight = int(clock.now() * 1000) // day * day
    at = midnight + 605 * minute
    store.append_batch(
        np.array([m, r], np.int32), np.array([at, midnight + 655 * minute]), np.array([1.0, 0.0])
    )
    store._cut()
    _one(store, m, at, 2.0)  # the later write
    store._cut()
    _one(store, q, midnight + 650 * minute, 0.0)
    store._cut()
    assert _newest(store, at - 1, at) == _last_of_each(store, at - 1, at) == [(at, 2.0)]
    clock.advance((midnight + day + 630 * minute) / 1000 - clock.now())
    store.maintain()
    before = _newest(store, at - 1, at)
    # The window's blocks around the one written between them are not merged.
    assert before == _last_of_each(store, at - 1, at) == [(at, 2.0)]
    store.close()
    store = open_store(**_TIERS)
    assert _newest(store, at - 1, at) == before
