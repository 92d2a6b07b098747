"""Reading ``timestamp,value`` traces and putting them on the decision grid."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["Trace", "TraceError", "load_trace", "sample_and_hold", "trace_files"]

FloatArray = NDArray[np.float64]


class TraceError(Exception):
    """A trace file cannot be used; the message names the file and, where known, the line."""


@dataclass(frozen=True)
class Trace:
    """Samples of one workload's load, sorted by time (unix seconds)."""

    name: str
    times: FloatArray
    values: FloatArray


def load_trace(path: Path) -> Trace:
    """Read a CSV trace with the header ``timestamp,value``; rows with gaps are kept as gaps."""
    times: list[float] = []
    values: list[float] = []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
                raise TraceError(f"{path}:1: expected the header 'timestamp,value', got {header}")
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    ts, value = float(row[0]), float(row[1])
                except (ValueError, IndexError) as e:
                    raise TraceError(f"{path}:{lineno}: not a 'timestamp,value' row: {row}") from e
                if math.isfinite(ts) and math.isfinite(value):
                    times.append(ts)
                    values.append(value)
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror}") from e
    if len(times) < 2:
        raise TraceError(f"{path}: needs at least two samples, has {len(times)}")
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    return Trace(name=path.stem, times=t[order], values=v[order])


def sample_and_hold(trace: Trace, step_seconds: float) -> FloatArray:
    """The last trace value at or before each grid step from the first sample; negatives are 0."""
    start = trace.times[0]
    steps = math.floor((trace.times[-1] - start) / step_seconds) + 1
    grid = start + step_seconds * np.arange(steps, dtype=np.float64)
    # side="right" picks the last sample at or before the step, including equal timestamps.
    idx = np.searchsorted(trace.times, grid, side="right") - 1
    held: FloatArray = np.maximum(trace.values[idx], 0.0)
    return held


def trace_files(paths: list[Path]) -> list[Path]:
    """Every ``*.csv`` named directly or found in a named folder, sorted within each folder."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(p.glob("*.csv")))
        elif p.is_file():
            found.append(p)
        else:
            raise TraceError(f"{p}: no such file or folder")
    if not found:
        raise TraceError(f"no *.csv trace in {', '.join(str(p) for p in paths)}")
    return found
