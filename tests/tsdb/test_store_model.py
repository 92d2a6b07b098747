"""The store against a reference model: a dict of series to {timestamp: value}.

Until retention has run the store must answer exactly as the model. Once it has, old samples
may be thinned out or gone, but the store never returns a sample the model does not hold, and
keeps every sample younger than the raw retention.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from runtime.clock import VirtualClock
from tsdb import Matcher, Store, StoreSettings, make_labels
from tsdb.labels import Labels

T0 = 1_700_000_000_000
NAMES = ["cpu", "mem"]
PODS = ["a", "b", "c", "d"]

labels_st = st.builds(
    lambda name, pod, zone: make_labels({"__name__": name, "pod": pod, "zone": zone}),
    st.sampled_from(NAMES),
    st.sampled_from(PODS),
    st.sampled_from(["", "z1", "z2"]),
)
# Timestamps over ~3 days, in a coarse grid so duplicates and disorder are frequent.
ts_st = st.integers(0, 3 * 24 * 360).map(lambda k: T0 + k * 10_000)
value_st = st.floats(allow_nan=False, allow_infinity=False, width=64)
matcher_st = st.one_of(
    st.builds(lambda n: Matcher.parse("__name__", "=", n), st.sampled_from(NAMES)),
    st.builds(lambda p: Matcher.parse("pod", "!=", p), st.sampled_from(PODS)),
    st.builds(lambda r: Matcher.parse("pod", "=~", r), st.sampled_from(["a|b", "c.*", "x", ".*"])),
    st.builds(lambda r: Matcher.parse("zone", "!~", r), st.sampled_from(["z1", "", ".+"])),
    st.builds(lambda z: Matcher.parse("zone", "=", z), st.sampled_from(["", "z2"])),
)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="store-model-"))
        # No sample is older than a retention until `age` moves the clock: before that,
        # the store must give back exactly what was written.
        self.clock = VirtualClock(start=T0 / 1000)
        # Small heads, blocks and retentions so that sealing, merging, downsampling and
        # deletion all happen within a few steps.
        self.settings = StoreSettings(
            data_dir=self.dir,
            head_max_samples=1_000,
            block_duration_minutes=60,
            raw_retention_hours=6,
            minute_retention_days=1,
            five_minute_retention_days=2,
        )
        self.aged = False
        self.store = Store(self.settings, self.clock)
        self.model: dict[Labels, dict[int, float]] = {}
        self.rows_written = 0

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(labels=labels_st, ts=ts_st, value=value_st)
    def append_one(self, labels: Labels, ts: int, value: float) -> None:
        self.store.append(labels, ts, value)
        self.rows_written += 1
        self.model.setdefault(labels, {})[ts] = value

    @rule(
        batch=st.lists(st.tuples(labels_st, ts_st, value_st), min_size=1, max_size=600),
        together=st.booleans(),
    )
    def append_batch(self, batch: list[tuple[Labels, int, float]], together: bool) -> None:
        if together:
            refs = self.store.refs([lb for lb, _, _ in batch])
        else:
            refs = np.array([self.store.ref(lb) for lb, _, _ in batch], np.int32)
        ts = np.array([t for _, t, _ in batch], np.int64)
        values = np.array([v for _, _, v in batch], np.float64)
        self.store.append_batch(refs, ts, values)
        self.rows_written += len(batch)
        for lb, t, v in batch:
            self.model.setdefault(lb, {})[t] = v

    @rule()
    def flush(self) -> None:
        self.store.flush()

    @rule()
    def maintain(self) -> None:
        self.store.maintain()

    @rule(hours=st.integers(1, 30))
    def age(self, hours: int) -> None:
        self.clock.advance(hours * 3600)
        self.store.maintain()
        self.aged = True

    @rule()
    def restart(self) -> None:
        self.store.close()
        self.store = Store(self.settings, self.clock)

    @precondition(lambda self: bool(self.model))
    @rule(
        matchers=st.lists(matcher_st, min_size=1, max_size=3),
        lo=ts_st,
        span=st.integers(0, 3 * 24 * 360).map(lambda k: k * 10_000),
    )
    def select(self, matchers: list[Matcher], lo: int, span: int) -> None:
        hi = lo + span
        got = {
            s.labels: dict(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
            for s in self.store.select(matchers, lo, hi)
        }
        expected = {}
        for labels, samples in self.model.items():
            values = dict(labels)
            if all(m.matches(values.get(m.name, "")) for m in matchers):
                in_range = {t: v for t, v in samples.items() if lo <= t <= hi}
                if in_range:
                    expected[labels] = dict(sorted(in_range.items()))
        for s in self.store.select(matchers, lo, hi):
            assert np.all(np.diff(s.timestamps) > 0)
        coded = self.store.select_coded(matchers, lo, hi)
        strings = self.store.strings
        as_tuples = [
            tuple((n, strings.value(int(c))) for n, c in zip(coded.names, row, strict=True) if c)
            for row in coded.codes
        ]
        full = self.store.select(matchers, lo, hi)
        assert as_tuples == [s.labels for s in full]
        newest = self.store.select_coded(matchers, lo, hi, newest=True)
        assert newest.codes.tolist() == coded.codes.tolist()
        assert newest.timestamps.tolist() == [int(s.timestamps[-1]) for s in full]
        assert newest.values.tolist() == [float(s.values[-1]) for s in full]
        if not self.aged:
            assert got == expected
            return
        raw_limit = self.clock.now() * 1000 - self.settings.raw_retention_hours * 3_600_000
        for labels, samples in got.items():
            assert labels in expected
            for t, v in samples.items():
                assert expected[labels][t] == v
        for labels, samples in expected.items():
            recent = {t: v for t, v in samples.items() if t >= raw_limit}
            if recent:
                assert {t: got[labels][t] for t in recent} == recent

    @invariant()
    def counts_agree(self) -> None:
        stats = self.store.stats()
        assert stats.series == len(self.model) or self.aged
        # Restarts must not replay the log into duplicate rows.
        assert stats.head_samples + stats.block_samples <= self.rows_written


StoreMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestStoreModel = StoreMachine.TestCase
