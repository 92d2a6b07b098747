"""Features a person would pick for load, for the learned peak model.

Every feature at origin ``s`` uses only ``values[: s + 1]``. Levels enter as log ratios with an
offset, so one model serves series of any scale.
"""

from __future__ import annotations

import numpy as np

from autoscaler.forecast.base import FloatArray, IntArray

__all__ = ["FEATURE_NAMES", "peak_features"]

DAY = 86_400.0
WEEK = 7 * DAY

FEATURE_NAMES = (
    "level_vs_hour_mean",
    "level_vs_day_mean",
    "hour_max_vs_level",
    "trend_over_horizon",
    "jump_same_time_yesterday",
    "jump_same_time_last_week",
    "yesterday_next_vs_now",
    "recent_max_jump",
    "time_of_day_sin",
    "time_of_day_cos",
    "day_of_week_sin",
    "day_of_week_cos",
)


def _log_ratio(a: FloatArray, b: FloatArray, offset: float) -> FloatArray:
    with np.errstate(invalid="ignore"):
        return np.asarray(np.log((a + offset) / (b + offset)), dtype=np.float64)


def _window_stat(values: FloatArray, ends: IntArray, length: int, op: str) -> FloatArray:
    """max or mean of ``values[end - length + 1 : end + 1]`` per end (shorter at the start)."""
    out = np.empty(len(ends))
    for k, e in enumerate(ends):
        w = values[max(0, e - length + 1) : e + 1]
        out[k] = w.max() if op == "max" else w.mean()
    return out


def peak_features(
    values: FloatArray,
    origins: IntArray,
    start_time: float,
    step_seconds: float,
    horizon_steps: int,
    offset: float,
) -> FloatArray:
    """Feature rows (one per origin, columns as :data:`FEATURE_NAMES`)."""
    v = np.nan_to_num(values, nan=0.0)
    h = horizon_steps
    hour, day, week = (
        round(3600 / step_seconds),
        round(DAY / step_seconds),
        round(WEEK / step_seconds),
    )
    csum = np.concatenate([[0.0], np.cumsum(v)])

    def mean_back(length: int) -> FloatArray:
        lo = np.maximum(origins + 1 - length, 0)
        return np.asarray((csum[origins + 1] - csum[lo]) / (origins + 1 - lo), dtype=np.float64)

    def jump_at(lag: int) -> FloatArray:
        # Realised jump over a horizon that started ``lag`` steps ago (known since lag > h).
        base = origins - lag
        ok = base >= 0
        out = np.zeros(len(origins))
        if ok.any():
            b = base[ok]
            peak = _window_stat(v, b + h, h, "max")
            out[ok] = _log_ratio(peak, v[b], offset)
        return out

    level = v[origins]
    hour_max = _window_stat(v, origins, hour, "max")
    before = v[np.maximum(origins - h, 0)]
    yesterday = np.maximum(origins - day, 0)
    yesterday_next = v[np.minimum(yesterday + h, origins)]
    # Largest realised jump over the last hour: the peak after s - h - k vs the level then.
    recent = np.zeros(len(origins))
    for k, o in enumerate(origins):
        lo = max(0, o - h - hour)
        bases = v[lo : max(lo, o - h)]
        if len(bases):
            peaks = np.lib.stride_tricks.sliding_window_view(v[lo + 1 : o + 1], h).max(axis=1)
            m = min(len(bases), len(peaks))
            recent[k] = float(_log_ratio(peaks[:m], bases[:m], offset).max()) if m else 0.0
    t = start_time + origins.astype(np.float64) * step_seconds
    tod = 2 * np.pi * (t % DAY) / DAY
    dow = 2 * np.pi * (t % WEEK) / WEEK
    return np.column_stack(
        [
            _log_ratio(level, mean_back(hour), offset),
            _log_ratio(level, mean_back(day), offset),
            _log_ratio(hour_max, level, offset),
            _log_ratio(level, before, offset),
            jump_at(day),
            jump_at(week),
            _log_ratio(yesterday_next, v[yesterday], offset),
            recent,
            np.sin(tod),
            np.cos(tod),
            np.sin(dow),
            np.cos(dow),
        ]
    )
