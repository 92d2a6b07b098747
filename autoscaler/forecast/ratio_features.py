"""Features of the log ratio of the coming peak to the current load, for ``conformal``.

The target at position ``s`` is ``y[s] = log(max(v[s+1 : s+1+h]) + o) - log(v[s] + o)``: the
jump over the horizon, as a log ratio with an offset so that quiet series stay bounded. It
is realised ``h`` steps later, so a feature at origin ``t`` may use ``y[s]`` only for
``s <= t - h``, and values only up to ``t``. Every column keeps to that; the test
``test_a_forecaster_cannot_see_past_now`` changes the future and checks nothing moves.

Two paths give the same rows: :func:`ratio_table` computes every position of an array at
once (cumulative sums and sliding windows: a week of 15 s steps in milliseconds, for
fitting), :func:`ratio_rows` only the origins asked for (a few thousand reads each: what a
controller's prediction costs, on the event loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autoscaler.forecast.base import FloatArray, IntArray

__all__ = ["RATIO_FEATURES", "RatioTable", "ratio_rows", "ratio_table", "span_needed"]

DAY = 86_400.0
WEEK = 7 * DAY
_RECENT = 3600.0  # seconds of realised jumps that say how restless the load is now
_SEASON_WINDOW = 600.0  # half-width of the window around the same time a season ago

RATIO_FEATURES = (
    "jump_same_time_yesterday",
    "jump_same_time_last_week",
    "max_jump_same_time_yesterday",
    "jump_last_hour",
    "jump_rms_last_hour",
    "peak_yesterday_vs_now",
    "peak_last_week_vs_now",
    "level_vs_day_mean",
    "time_of_day_sin",
    "time_of_day_cos",
)


@dataclass(frozen=True)
class RatioTable:
    """Feature rows and realised targets for every position of one array of values."""

    features: FloatArray  # (n, len(RATIO_FEATURES))
    target: FloatArray  # y[s]; NaN where the peak after s is not yet known


@dataclass(frozen=True)
class _Grid:
    """The sizes, in steps, that the features are defined with."""

    h: int
    day: int
    week: int
    season: int  # half-width of the seasonal window
    recent: int

    @classmethod
    def of(cls, step_seconds: float, horizon_steps: int) -> _Grid:
        return cls(
            h=horizon_steps,
            day=round(DAY / step_seconds),
            week=round(WEEK / step_seconds),
            season=round(_SEASON_WINDOW / step_seconds),
            recent=round(_RECENT / step_seconds),
        )


def span_needed(step_seconds: float, horizon_steps: int) -> int:
    """Steps of history before an origin that its features read."""
    g = _Grid.of(step_seconds, horizon_steps)
    return g.week + g.season + 2 * g.h + 1


def _prepare(values: FloatArray, offset: float) -> tuple[FloatArray, FloatArray, float]:
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    o = _positive(offset)
    return v, np.log(v + o), o


def _positive(offset: float) -> float:
    # An offset of 0 (a workload at 0 all day) would take the log of 0.
    return offset if offset > 0 else 1e-9


def _time_of_day(start_time: float, step_seconds: float, pos: IntArray) -> list[FloatArray]:
    t = start_time + pos.astype(np.float64) * step_seconds
    tod = 2 * np.pi * (t % DAY) / DAY
    return [np.sin(tod), np.cos(tod)]


def _stack(columns: list[FloatArray]) -> FloatArray:
    out = np.column_stack(columns)
    return np.asarray(np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0), dtype=np.float64)


class _Sums:
    """Cumulative sums of the finite values of ``x``, for window means in O(1) each."""

    def __init__(self, x: FloatArray) -> None:
        ok = np.isfinite(x)
        self.n = len(x)
        self.total = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
        self.count = np.concatenate([[0], np.cumsum(ok)])

    def mean(self, ends: IntArray, length: int) -> FloatArray:
        """Mean of the finite ``x[end - length + 1 : end + 1]`` per end (0 where none)."""
        hi = np.clip(ends + 1, 0, self.n)
        lo = np.clip(ends + 1 - length, 0, self.n)
        count = self.count[hi] - self.count[lo]
        out = np.where(count > 0, (self.total[hi] - self.total[lo]) / np.maximum(count, 1), 0.0)
        return np.asarray(out, dtype=np.float64)


def _running_max(x: FloatArray, length: int) -> FloatArray:
    """``max(x[i - length + 1 : i + 1])`` for every ``i`` (shorter windows at the start), in
    O(n) whatever the length: the maxima of blocks of ``length`` taken from the left and from
    the right, two of which cover any window (van Herk / Gil-Werman)."""
    n = len(x)
    blocks = -(-(n + length - 1) // length)
    pad = np.full(blocks * length, -np.inf)
    pad[length - 1 : length - 1 + n] = x
    grid = pad.reshape(blocks, length)
    prefix = np.maximum.accumulate(grid, axis=1).ravel()
    suffix = np.maximum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.asarray(np.maximum(suffix[:n], prefix[length - 1 : length - 1 + n]))


def _window_max(x: FloatArray, ends: IntArray, length: int) -> FloatArray:
    """Max of the finite ``x[end - length + 1 : end + 1]`` per end (0 where none)."""
    windows = _running_max(np.where(np.isfinite(x), x, -np.inf), length)
    out = np.full(len(ends), -np.inf)
    ok = (ends >= 0) & (ends < len(x))
    out[ok] = windows[ends[ok]]
    return np.asarray(np.where(np.isfinite(out), out, 0.0), dtype=np.float64)


def ratio_table(
    values: FloatArray,
    start_time: float,
    step_seconds: float,
    horizon_steps: int,
    offset: float,
) -> RatioTable:
    """Features and targets at every position of ``values`` (see the module docstring)."""
    v, lv, o = _prepare(values, offset)
    g = _Grid.of(step_seconds, horizon_steps)
    n, h, k = len(v), g.h, g.season
    pk = np.full(n, np.nan)
    if n > h:
        pk[: n - h] = np.log(_running_max(v, h)[h:] + o)
    y = pk - lv
    pos = np.arange(n, dtype=np.int64)
    y_sums = _Sums(y)

    def seasonal(lag: int, top: bool) -> tuple[FloatArray, FloatArray, FloatArray]:
        # The window ends at pos - lag + k, known since lag > k + h.
        ends = pos - lag + k
        known = pos - lag - k >= 0
        mean = np.where(known, y_sums.mean(ends, 2 * k + 1), np.nan)
        most = np.where(known, _window_max(y, ends, 2 * k + 1), np.nan) if top else mean
        back = pos - lag
        ok = back >= 0
        peak = np.full(n, np.nan)
        peak[ok] = pk[back[ok]] - lv[ok]
        return mean, most, peak

    d_mean, d_max, d_peak = seasonal(g.day, top=True)
    w_mean, _, w_peak = seasonal(g.week, top=False)
    recent_end = pos - h
    columns = [
        d_mean,
        # Without a week of history the last week's columns repeat yesterday's.
        np.where(np.isnan(w_mean), d_mean, w_mean),
        d_max,
        y_sums.mean(recent_end, g.recent),
        np.sqrt(_Sums(y * y).mean(recent_end, g.recent)),
        d_peak,
        np.where(np.isnan(w_peak), d_peak, w_peak),
        lv - np.log(_Sums(v).mean(pos, g.day) + o),
        *_time_of_day(start_time, step_seconds, pos),
    ]
    return RatioTable(features=_stack(columns), target=y)


def ratio_rows(
    values: FloatArray,
    origins: IntArray,
    start_time: float,
    step_seconds: float,
    horizon_steps: int,
    offset: float,
) -> FloatArray:
    """The rows of :func:`ratio_table` at ``origins`` only, reading just what they need."""
    raw = np.asarray(values, dtype=np.float64)
    o = _positive(offset)
    g = _Grid.of(step_seconds, horizon_steps)
    h, k = g.h, g.season
    ahead = np.arange(1, h + 1)

    def load(idx: IntArray) -> FloatArray:
        return np.nan_to_num(raw[idx], nan=0.0)

    def jumps(idx: IntArray) -> FloatArray:
        """y at ``idx`` (any shape); NaN before the first value. Every idx + h <= its origin."""
        ok = idx >= 0
        safe = np.where(ok, idx, 0)
        peak = load(safe[..., None] + ahead).max(axis=-1)
        out = np.log(peak + o) - np.log(load(safe) + o)
        return np.asarray(np.where(ok, out, np.nan), dtype=np.float64)

    now = np.log(load(origins) + o)

    def seasonal(lag: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        known = origins - lag - k >= 0
        # Where known, the whole window lies in the history; elsewhere it is not used.
        window = np.where(known[:, None], jumps(origins[:, None] - lag + np.arange(-k, k + 1)), 0)
        mean = np.where(known, window.mean(axis=1), np.nan)
        top = np.where(known, window.max(axis=1), np.nan)
        back = origins - lag
        ok = back >= 0
        safe = np.where(ok, back, 0)
        peak_back = np.log(load(safe[:, None] + ahead).max(axis=1) + o)
        peak = np.where(ok, peak_back - now, np.nan)
        return mean, top, peak

    d_mean, d_max, d_peak = seasonal(g.day)
    w_mean, _, w_peak = seasonal(g.week)
    recent = jumps(origins[:, None] - h - np.arange(g.recent))
    count = np.isfinite(recent).sum(axis=1)
    filled = np.nan_to_num(recent, nan=0.0)
    with np.errstate(all="ignore"):
        recent_mean = np.where(count > 0, filled.sum(axis=1) / np.maximum(count, 1), 0.0)
        recent_sq = np.where(count > 0, (filled * filled).sum(axis=1) / np.maximum(count, 1), 0.0)
    day_mean = np.array([load(np.arange(max(0, t - g.day + 1), t + 1)).mean() for t in origins])
    columns = [
        d_mean,
        np.where(np.isnan(w_mean), d_mean, w_mean),
        d_max,
        recent_mean,
        np.sqrt(recent_sq),
        d_peak,
        np.where(np.isnan(w_peak), d_peak, w_peak),
        now - np.log(day_mean + o),
        *_time_of_day(start_time, step_seconds, origins),
    ]
    return _stack(columns)
