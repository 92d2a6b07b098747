"""``deriv`` and ``predict_linear``'s least squares, window by window: the vectorised sums
give each window's own line, whether the windows are every sample of their series (an
instant query) or overlapping ranges of them (a range query's steps)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from promql.labelsets import LabelTable
from promql.values import Matrix
from promql.windows import regression

RANGE_MS = 60_000


def _line(ts: list[int], ys: list[float], at_ms: float) -> tuple[float, float]:
    """One window's slope (per second) and intercept at ``at_ms``, computed alone."""
    xs = [(t - at_ms) / 1000.0 for t in ts]
    if all(y == ys[0] for y in ys):
        return 0.0, ys[0]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = cov / var if var else math.nan
    return slope, my - slope * mx


def _matrix(series: list[list[float]], steps: list[int]) -> Matrix:
    """Series sampled every 15 s from 0, windows of ``RANGE_MS`` ending at ``steps``."""
    ts, vals, starts, ends = [], [], [], []
    for ys in series:
        starts.append(len(ts))
        ts += [15_000 * k for k in range(len(ys))]
        vals += ys
        ends.append(len(ts))
    t = np.array(ts, dtype=np.int64)
    lo = np.empty((len(series), len(steps)), dtype=np.int64)
    hi = np.empty_like(lo)
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        for j, step in enumerate(steps):
            lo[i, j] = a + np.searchsorted(t[a:b], step - RANGE_MS, side="right")
            hi[i, j] = a + np.searchsorted(t[a:b], step, side="right")
    labels = [(("s", str(i)),) for i in range(len(series))]
    return Matrix(
        LabelTable.from_tuples(labels),
        t,
        np.array(vals, dtype=np.float64),
        np.array(starts, dtype=np.int64),
        np.array(ends, dtype=np.int64),
        lo,
        hi,
        np.array(steps, dtype=np.int64),
        RANGE_MS,
        np.zeros((len(series), len(steps)), dtype=bool),
    )


values = st.one_of(
    st.integers(-50, 50).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(values, min_size=0, max_size=9), min_size=1, max_size=6),
    st.lists(st.integers(0, 150_000), min_size=1, max_size=4, unique=True),
    st.booleans(),
    st.integers(1, 3),
)
def test_each_window_gets_its_own_line(
    series: list[list[float]], steps: list[int], constant: bool, min_samples: int
) -> None:
    if constant:
        # Windows of equal values: slope 0, whatever the times.
        series = [[ys[0]] * len(ys) if ys else [] for ys in series]
    m = _matrix(series, sorted(steps))
    at = np.broadcast_to(m.times.astype(np.float64)[None, :], m.lo.shape)
    slope, intercept, ok = regression(m, at, min_samples)
    for i in range(len(series)):
        for j in range(len(steps)):
            a, b = int(m.lo[i, j]), int(m.hi[i, j])
            assert ok[i, j] == (b - a >= min_samples)
            if not ok[i, j]:
                assert slope[i, j] == 0 and intercept[i, j] == 0
                continue
            want = _line(m.ts[a:b].tolist(), m.vals[a:b].tolist(), float(at[i, j]))
            got = (float(slope[i, j]), float(intercept[i, j]))
            for w, g in zip(want, got, strict=True):
                assert (math.isnan(w) and math.isnan(g)) or math.isclose(
                    w, g, rel_tol=1e-9, abs_tol=1e-6
                ), (i, j, want, got)


def test_an_instant_query_reads_every_sample_as_its_window() -> None:
    # One step, windows covering each series whole: the path without a gather.
    m = _matrix([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0], [2.0, 0.0, -2.0]], [45_000])
    assert (m.lo[:, 0] == m.starts).all() and (m.hi[:, 0] == m.ends).all()
    at = m.times.astype(np.float64)[None, :].repeat(3, axis=0)
    slope, intercept, ok = regression(m, at)
    assert ok.all()
    assert slope[:, 0].tolist() == [1 / 15, 0.0, -2 / 15]
    # Each line at the step's time, 45 s: 4; 5; -2 at 30 s plus 15 s of slope.
    assert np.allclose(intercept[:, 0], [4.0, 5.0, -4.0])
