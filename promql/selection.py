"""From stored samples to the values selectors produce: lookback, staleness and windows."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple, Protocol, TypeGuard, runtime_checkable

import numpy as np
import numpy.typing as npt

from promql.labelsets import LabelTable, Strings
from promql.values import F64, I64, Matrix, Vector
from tsdb import Matcher, Series, stale_mask
from tsdb.store import CodedColumns, SeriesColumns
from tsdb.strings import StringTable


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


@runtime_checkable
class CodedQuerier(Querier, Protocol):
    """A querier that hands over label sets as integer codes (the embedded store)."""

    @property
    def strings(self) -> StringTable:
        """The strings behind the codes."""
        ...

    def select_coded(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, newest: bool = False
    ) -> CodedColumns:
        """:meth:`Querier.select` as columns, label sets as codes of :attr:`strings`; with
        ``newest``, only each series' newest sample."""
        ...


@functools.cache
def _has(cls: type, method: str) -> bool:
    return callable(getattr(cls, method, None))


def _is_coded(querier: Querier) -> TypeGuard[CodedQuerier]:
    # By class, once: a runtime Protocol check costs tens of microseconds per call.
    return _has(type(querier), "select_coded")


def _is_columnar(querier: Querier) -> TypeGuard[ColumnQuerier]:
    return _has(type(querier), "select_columns")


class Selected(NamedTuple):
    """Selected series: their label sets and their samples laid end to end (series ``i``
    is ``timestamps[starts[i]:ends[i]]``)."""

    table: LabelTable
    timestamps: I64
    values: F64
    starts: I64
    ends: I64


def strings_for(querier: Querier) -> Strings:
    """The label value codes a query over ``querier`` uses."""
    if _is_coded(querier):
        return Strings(querier.strings)
    return Strings()


def select(
    querier: Querier,
    matchers: Sequence[Matcher],
    start: int,
    end: int,
    strings: Strings,
    newest: bool = False,
) -> Selected:
    """The selected series as columns, whatever the querier hands over. With ``newest``
    the querier may leave out all but each series' newest sample."""
    if _is_coded(querier) and strings.base is querier.strings:
        c = querier.select_coded(matchers, start, end, newest)
        table = LabelTable(c.names, strings.adopt(c.codes), strings, unique=True)
        return Selected(table, c.timestamps, c.values, c.starts, c.ends)
    if _is_columnar(querier):
        cols = querier.select_columns(matchers, start, end)
    else:
        cols = to_columns(querier.select(matchers, start, end))
    table = LabelTable.from_tuples(cols.labels, strings).distinct()
    return Selected(table, cols.timestamps, cols.values, cols.starts, cols.ends)


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

    def __init__(self, series: Selected, drop_stale: bool) -> None:
        self.table = series.table
        n = len(series.table)
        self.n = n
        lengths = series.ends - series.starts
        ts: I64 = series.timestamps.astype(np.int64, copy=False)
        vals: F64 = series.values.astype(np.float64, copy=False)
        if drop_stale and len(vals):
            stale = stale_mask(vals)
            if stale.any():
                keep = ~stale
                seg = np.repeat(np.arange(n, dtype=np.int64), lengths)
                ts, vals, seg = ts[keep], vals[keep], seg[keep]
                lengths = np.bincount(seg, minlength=n).astype(np.int64)
        self.ts, self.vals = ts, vals
        self.ends: I64 = np.cumsum(lengths)
        self.starts: I64 = self.ends - lengths
        self.base = int(ts.min()) - 1 if len(ts) else 0
        span = int(ts.max()) - self.base if len(ts) else 0
        self.width = span + 2

    @functools.cached_property
    def keys(self) -> I64:
        """One sorted key per sample: series number, then time. Searching it with
        (series, time) pairs finds every series' window with one searchsorted."""
        seg = np.repeat(np.arange(self.n, dtype=np.int64), self.ends - self.starts)
        keys: I64 = seg * self.width + (self.ts - self.base)
        return keys

    @functools.cached_property
    def grid(self) -> tuple[I64, npt.NDArray[np.bool_]]:
        """The times most series were sampled at (scrapes write every series of a target
        at one time), and which series have exactly those times: their positions are
        found by one small search shared by all of them."""
        lengths = self.ends - self.starts
        if not self.n or not len(self.ts):
            return np.zeros(0, np.int64), np.zeros(self.n, bool)
        width = int(np.bincount(lengths).argmax())
        same = lengths == width
        first = int(np.argmax(same))
        ref = self.ts[self.starts[first] : self.starts[first] + width]
        if not width:
            return ref, np.zeros(self.n, bool)
        if same.all():
            rows = self.ts.reshape(self.n, width)
        else:
            rows = self.ts[self.starts[same][:, None] + np.arange(width)]
        same[same] = (rows == ref[None, :]).all(axis=1)
        return ref, same

    def position(self, times: I64) -> I64:
        """For each series and time, the index just past the last sample at or before it."""
        ref, same = self.grid
        at = np.searchsorted(ref, times, side="right").astype(np.int64)
        if same.all():
            everywhere: I64 = self.starts[:, None] + at[None, :]
            return everywhere
        pos = np.empty((self.n, len(times)), dtype=np.int64)
        if same.any():
            pos[same] = self.starts[same][:, None] + at[None, :]
        other = np.flatnonzero(~same)
        if len(other):
            rel = np.clip(times - self.base, 0, self.width - 1)
            query = other[:, None] * self.width + rel[None, :]
            pos[other] = np.searchsorted(self.keys, query, side="right")
        return pos


def instant_vector(series: Selected, times: I64, lookback_ms: int) -> Vector:
    """The newest sample in ``(t - lookback, t]`` of each series at each time ``t``.

    A staleness marker as the newest sample hides the series.
    """
    steps = len(times)
    if not len(series.table):
        return Vector.empty(steps, series.table.strings)
    if steps == 1 and len(series.timestamps) == len(series.table):
        return _newest_only(series, int(times[0]), lookback_ms)
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
        packed.table,
        np.where(present, values, 0.0),
        present,
        np.zeros(packed.n, dtype=bool),
        sample_ts,
    )
    return vec if keep.all() else vec.take(keep)


def _newest_only(series: Selected, at: int, lookback_ms: int) -> Vector:
    """An instant vector at one time from one sample per series (the newest)."""
    ts, vals = series.timestamps, series.values
    present = (ts <= at) & (ts > at - lookback_ms) & ~stale_mask(vals)
    vec = Vector(
        series.table,
        np.where(present, vals, 0.0)[:, None],
        present[:, None],
        np.zeros(len(ts), dtype=bool),
        ts[:, None],
    )
    return vec if present.all() else vec.take(present)


def matrix(series: Selected, times: I64, range_ms: int) -> Matrix:
    """Windows ``(t - range, t]`` over each series at each time ``t``; staleness markers
    are not samples here."""
    packed = _Packed(series, drop_stale=True)
    n = packed.n
    ts = packed.ts
    at = int(times[0]) if len(times) == 1 else None
    if (
        n
        and at is not None
        and (not len(ts) or at - range_ms < int(ts.min()) <= int(ts.max()) <= at)
    ):
        # One window holding every sample selected (the usual instant query).
        hi = packed.ends[:, None]
        lo = packed.starts[:, None]
    elif n:
        hi = packed.position(times)
        lo = packed.position(times - range_ms)
    else:
        hi = lo = np.zeros((0, len(times)), dtype=np.int64)
    return Matrix(
        table=packed.table,
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
    present = vec.present
    lengths = present.sum(axis=1).astype(np.int64)
    ends: I64 = np.cumsum(lengths)
    # Masks rather than np.nonzero's rows and steps: the same row-major order, faster.
    times_at = np.broadcast_to(inner_times, present.shape)[present]
    selected = Selected(vec.table, times_at, vec.values[present], ends - lengths, ends)
    m = matrix(selected, times, range_ms)
    m.drop_name = vec.drop_name.copy()
    m.from_selector = False
    return m
