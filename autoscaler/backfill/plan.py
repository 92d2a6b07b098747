"""What a back-fill asks for: the spans of a window where the store holds no samples of a
series, cut into chunks of whole steps. Pure functions of timestamps.

A span is half-open, ``[lo, hi)`` in ms, and never contains a timestamp the store has, so a
back-fill adds samples and never replaces one; once filled it is no longer a span, so a
second run over the same window (a restart) asks for nothing. Spacing up to ``max_gap_ms``
counts as covered: the store's own samples (every scrape, or one a minute or five minutes
once downsampled) are never "missing" between each other.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["Span", "chunks", "missing_spans", "span_steps"]

Span = tuple[int, int]


def missing_spans(
    timestamps_ms: npt.NDArray[np.int64], start_ms: int, end_ms: int, max_gap_ms: int
) -> list[Span]:
    """The spans of ``[start_ms, end_ms]`` with no sample for longer than ``max_gap_ms``:
    before the first sample, between two samples, after the last one."""
    ts = np.unique(timestamps_ms[(timestamps_ms >= start_ms) & (timestamps_ms <= end_ms)])
    if not len(ts):
        return [(start_ms, end_ms + 1)]
    spans: list[Span] = []
    if ts[0] - start_ms > max_gap_ms:
        spans.append((start_ms, int(ts[0])))
    gaps = np.flatnonzero(np.diff(ts) > max_gap_ms)
    spans.extend((int(ts[i]) + 1, int(ts[i + 1])) for i in gaps)
    if end_ms - ts[-1] > max_gap_ms:
        spans.append((int(ts[-1]) + 1, end_ms + 1))
    return spans


def span_steps(span: Span, step_ms: int) -> tuple[int, int] | None:
    """The first and last multiple of ``step_ms`` inside ``span``, or None."""
    lo, hi = span
    first = math.ceil(lo / step_ms) * step_ms
    last = (hi - 1) // step_ms * step_ms
    return (first, last) if first <= last else None


def chunks(spans: list[Span], step_ms: int, max_steps: int) -> list[tuple[int, int]]:
    """``(first, last)`` ms of range queries covering the spans' grid points, at most
    ``max_steps`` points each, newest first: the recent past is what a forecast needs most,
    so it arrives first."""
    if step_ms <= 0 or max_steps < 1:
        raise ValueError(f"need step_ms > 0 and max_steps >= 1, got {step_ms}, {max_steps}")
    out: list[tuple[int, int]] = []
    for span in spans:
        grid = span_steps(span, step_ms)
        if grid is None:
            continue
        first, last = grid
        stop = last
        while stop >= first:
            begin = max(first, stop - (max_steps - 1) * step_ms)
            out.append((begin, stop))
            stop = begin - step_ms
    out.sort(key=lambda c: -c[1])
    return out
