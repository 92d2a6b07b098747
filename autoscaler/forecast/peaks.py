"""Peaks over a horizon, the scale of a series, and calibration of point forecasts."""

from __future__ import annotations

import numpy as np

from autoscaler.forecast.base import FloatArray, IntArray

__all__ = ["calibrate_ratio", "future_peaks", "level_scale", "pinball_loss", "ratio_quantile"]


def future_peaks(values: FloatArray, steps: int) -> FloatArray:
    """``max(values[s + 1 : s + 1 + steps])`` for each ``s``; NaN where not yet realised."""
    n = len(values)
    out = np.full(n, np.nan)
    if n > steps:
        windows = np.lib.stride_tricks.sliding_window_view(values[1:], steps)
        out[: len(windows)] = windows.max(axis=1)
    return out


def level_scale(values: FloatArray, window: int) -> float:
    """Typical level of the recent past: the mean of the last ``window`` values (0 if none)."""
    recent = values[-window:]
    finite = recent[np.isfinite(recent)]
    return float(finite.mean()) if len(finite) else 0.0


def ratio_quantile(
    actual: FloatArray, predicted: FloatArray, offset: float, quantile: float
) -> float:
    """Quantile of (actual + offset) / (predicted + offset) over the pairs known on both sides.

    The offset keeps a quiet series (near zero) from producing unbounded ratios.
    """
    ok = np.isfinite(actual) & np.isfinite(predicted)
    if not ok.any():
        return 1.0
    num, den = actual[ok] + offset, predicted[ok] + offset
    # A forecast of 0 on a workload with no offset (all history at 0) cannot be scaled into
    # cover; such pairs say nothing about the multiplier.
    usable = den > 0
    ratios = num[usable] / den[usable]
    return float(np.quantile(ratios, quantile)) if len(ratios) else 1.0


def calibrate_ratio(
    values: FloatArray,
    point: FloatArray,
    origins: IntArray,
    steps: int,
    offset: float,
    quantile: float,
) -> float:
    """The multiplier that turns point forecasts at ``origins`` into a ``quantile`` forecast."""
    peaks = future_peaks(values, steps)[origins]
    return ratio_quantile(peaks, point, offset, quantile)


def pinball_loss(actual: FloatArray, predicted: FloatArray, quantile: float) -> float:
    """Mean pinball (quantile) loss over the pairs known on both sides."""
    ok = np.isfinite(actual) & np.isfinite(predicted)
    if not ok.any():
        return float("inf")
    diff = actual[ok] - predicted[ok]
    return float(np.mean(np.maximum(quantile * diff, (quantile - 1) * diff)))
