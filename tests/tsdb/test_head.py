"""The head's selection through its per-chunk series order finds what a scan finds: every
row of the wanted series, each series' rows in arrival order, for views taken between
appends (rows appended after an order was made, orders made again, views older than the
order another reader made)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tsdb.head import CHUNK, Head


def _scan(sids: np.ndarray, ts: np.ndarray, vals: np.ndarray, want: np.ndarray) -> list:
    hit = np.isin(sids, want)
    return sorted(
        zip(
            sids[hit].tolist(),
            range(int(hit.sum())),
            ts[hit].tolist(),
            vals[hit].tolist(),
            strict=True,
        )
    )


def _per_series(s: np.ndarray, t: np.ndarray, v: np.ndarray) -> list:
    order = np.argsort(s, kind="stable")
    return list(
        zip(s[order].tolist(), range(len(s)), t[order].tolist(), v[order].tolist(), strict=True)
    )


@settings(max_examples=10, deadline=None)
@given(
    batches=st.lists(st.integers(1, 6_000) | st.integers(1, CHUNK // 2), min_size=1, max_size=8),
    wanted=st.lists(st.integers(1, 50_000), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_select_finds_what_a_scan_finds(batches: list[int], wanted: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    head = Head()
    all_s, all_t, all_v = [], [], []
    views = []
    for k, n in enumerate(batches):
        s = rng.integers(0, 40_000, n).astype(np.int32)
        t = np.full(n, 1_000 + k, dtype=np.int64)
        v = rng.random(n)
        head.append(s, t, v)
        all_s.append(s)
        all_t.append(t)
        all_v.append(v)
        views.append((head.frozen(), sum(len(x) for x in all_s)))
        for m in wanted:
            want = np.unique(rng.integers(0, 40_000, m).astype(np.int32))
            # Newest view first, so that older views meet orders made for more rows.
            for view, rows in reversed(views):
                got = _per_series(*view.select(want))
                s_, t_, v_ = (np.concatenate(x)[:rows] for x in (all_s, all_t, all_v))
                expected = _scan(s_, t_, v_, want)
                assert [(a, c, d) for a, _, c, d in got] == [(a, c, d) for a, _, c, d in expected]
