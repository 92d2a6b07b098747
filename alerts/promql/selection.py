"""From stored samples to the values selectors produce: lookback, staleness and windows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from alerts.promql.values import F64, I64, Matrix, Vector
from collectors.store import Matcher, Series, stale_mask
from collectors.store.store import SeriesColumns


class Querier(Protocol):
    """Where series come from: the embedded store, or anything shaped like it."""

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        """Series matching all matchers with their samples in ``[start_ms, end_ms]``."""
        ...


@runtime_checkable
class ColumnQuerier(Querier, Protocol):
    """A querier that can hand over many series' samples without splitting them."""

    def select_columns(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> SeriesColumns:
        """:meth:`Querier.select` as columns."""
        ...


def select(querier: Querier, matchers: Sequence[Matcher], start: int, end: int) -> SeriesColumns:
    """The selected series as columns, whatever the querier hands over."""
    if isinstance(querier, ColumnQuerier):
        return querier.select_columns(matchers, start, end)
    return to_columns(querier.select(matchers, start, end))


def to_columns(series: Sequence[Series]) -> SeriesColumns:
    """Series laid end to end."""
    lengths = np.array([len(s.timestamps) for s in series], dtype=np.int64)
    ts: I64 = (
        np.concatenate([s.timestamps for s in series]).astype(np.int64)
        if series
        else np.zeros(0, dtype=np.int64)
    )
    vals: F64 = (
        np.concatenate([s.values for s in series]).astype(np.float64) if series else np.zeros(0)
    )
    ends: I64 = np.cumsum(lengths)
    return SeriesColumns([s.labels for s in series], ts, vals, ends - lengths, ends)


class _Packed:
    """Samples of many series laid end to end, searchable per series in one call."""

    def __init__(self, series: SeriesColumns, drop_stale: bool) -> None:
        self.labels = series.labels
        n = len(series.labels)
        lengths = series.ends - series.starts
        ts: I64 = series.timestamps.astype(np.int64, copy=False)
        vals: F64 = series.values.astype(np.float64, copy=False)
        seg = np.repeat(np.arange(n, dtype=np.int64), lengths)
        if drop_stale and len(vals):
            keep = ~stale_mask(vals)
            if not keep.all():
                ts, vals, seg = ts[keep], vals[keep], seg[keep]
                lengths = np.bincount(seg, minlength=n).astype(np.int64)
        self.ts, self.vals, self.seg = ts, vals, seg
        self.ends: I64 = np.cumsum(lengths)
        self.starts: I64 = self.ends - lengths
        self.base = int(ts.min()) - 1 if len(ts) else 0
        span = int(ts.max()) - self.base if len(ts) else 0
        self.width = span + 2
        # One sorted key per sample: series number, then time. Searching it with
        # (series, time) pairs finds every series' window with one searchsorted.
        self.keys: I64 = seg * self.width + (ts - self.base)

    def position(self, times: I64) -> I64:
        """For each series and time, the index just past the last sample at or before it."""
        rel = np.clip(times - self.base, 0, self.width - 1)
        query = np.arange(len(self.labels), dtype=np.int64)[:, None] * self.width + rel[None, :]
        pos: I64 = np.searchsorted(self.keys, query, side="right").astype(np.int64)
        return pos


def instant_vector(series: SeriesColumns, times: I64, lookback_ms: int) -> Vector:
    """The newest sample in ``(t - lookback, t]`` of each series at each time ``t``.

    A staleness marker as the newest sample hides the series.
    """
    steps = len(times)
    if not series.labels:
        return Vector.empty(steps)
    packed = _Packed(series, drop_stale=False)
    last = packed.position(times) - 1
    found = last >= packed.starts[:, None]
    idx = np.where(found, last, 0)
    if len(packed.ts):
        sample_ts = packed.ts[idx]
        values = packed.vals[idx]
        present = found & (sample_ts > times[None, :] - lookback_ms) & ~stale_mask(values)
    else:
        sample_ts = np.zeros(idx.shape, dtype=np.int64)
        values = np.zeros(idx.shape)
        present = np.zeros(idx.shape, dtype=bool)
    keep = present.any(axis=1)
    vec = Vector(
        packed.labels,
        np.where(present, values, 0.0),
        present,
        np.zeros(len(packed.labels), dtype=bool),
        sample_ts,
    )
    return vec if keep.all() else vec.take(keep)


def matrix(series: SeriesColumns, times: I64, range_ms: int) -> Matrix:
    """Windows ``(t - range, t]`` over each series at each time ``t``; staleness markers
    are not samples here."""
    packed = _Packed(series, drop_stale=True)
    n = len(packed.labels)
    if n:
        hi = packed.position(times)
        lo = packed.position(times - range_ms)
    else:
        hi = lo = np.zeros((0, len(times)), dtype=np.int64)
    return Matrix(
        labels=packed.labels,
        ts=packed.ts,
        vals=packed.vals,
        starts=packed.starts,
        ends=packed.ends,
        lo=lo,
        hi=hi,
        times=times,
        range_ms=range_ms,
        drop_name=np.zeros(n, dtype=bool),
        from_selector=True,
    )


def matrix_from_vector(vec: Vector, inner_times: I64, times: I64, range_ms: int) -> Matrix:
    """Windows over a vector evaluated at ``inner_times`` (a subquery's result)."""
    series = [
        Series(lb, inner_times[row], vec.values[i][row])
        for i, lb in enumerate(vec.labels)
        for row in [vec.present[i]]
    ]
    m = matrix(to_columns(series), times, range_ms)
    m.drop_name = vec.drop_name.copy()
    m.from_selector = False
    return m
