"""Where a workload's demand comes from: a recorded trace or a generated pattern.

A ``LoadSource`` answers "how many cores does this workload want at time t". Traces are
sampled and held (the last value at or before t), looped over their span, and scaled so
their 99th percentile is the scenario's ``peak``.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from simulator.errors import ScenarioError
from simulator.scenario import FlashCrowd, LoadSpec

__all__ = ["LoadSource", "PatternLoad", "Trace", "TraceLoad", "load_source", "read_trace"]

DAY = 86400.0


class LoadSource(Protocol):
    def demand(self, t: float) -> float:
        """Cores wanted at ``t`` seconds after the simulation start."""
        ...


@dataclass(frozen=True)
class Trace:
    """A ``timestamp,value`` series, sorted by time."""

    times: tuple[float, ...]
    values: tuple[float, ...]

    def value_at(self, ts: float) -> float:
        i = bisect.bisect_right(self.times, ts) - 1
        return self.values[max(i, 0)]

    def quantile(self, q: float) -> float:
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


def read_trace(path: Path) -> Trace:
    """Read a trace CSV; ScenarioError naming the line of a bad row."""
    times: list[float] = []
    values: list[float] = []
    try:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
                raise ScenarioError(f"{path}:1:1", "", "a trace needs the header 'timestamp,value'")
            for row in reader:
                if not row:
                    continue
                try:
                    ts, value = float(row[0]), float(row[1])
                except (ValueError, IndexError) as e:
                    raise ScenarioError(
                        f"{path}:{reader.line_num}:1", "", f"bad row {row!r}: expected two numbers"
                    ) from e
                if math.isfinite(ts) and math.isfinite(value):
                    times.append(ts)
                    values.append(max(0.0, value))
    except OSError as e:
        raise ScenarioError(str(path), "", f"cannot read the trace: {e.strerror}") from e
    if len(times) < 2:
        raise ScenarioError(f"{path}:1:1", "", "a trace needs at least two rows")
    order = sorted(range(len(times)), key=times.__getitem__)
    return Trace(tuple(times[i] for i in order), tuple(values[i] for i in order))


class TraceLoad:
    """A trace replayed from ``offset`` seconds in, looped, scaled to ``peak`` at its p99."""

    def __init__(
        self,
        trace: Trace,
        peak: float,
        offset: float = 0.0,
        flash_crowds: Sequence[FlashCrowd] = (),
    ) -> None:
        self._trace = trace
        p99 = trace.quantile(0.99)
        self._scale = peak / p99 if p99 > 0 else 0.0
        self._offset = offset
        self._span = trace.times[-1] - trace.times[0]
        self._flash = tuple(flash_crowds)

    def demand(self, t: float) -> float:
        position = (t + self._offset) % self._span if self._span > 0 else 0.0
        value = self._trace.value_at(self._trace.times[0] + position) * self._scale
        return value * _flash_factor(self._flash, t)


def _noise(t: float, seed: int) -> float:
    """Deterministic noise in [-1, 1], constant within each minute."""
    minute = int(t // 60)
    x = math.sin(minute * 12.9898 + seed * 78.233) * 43758.5453
    return 2.0 * (x - math.floor(x)) - 1.0


def _flash_factor(crowds: Sequence[FlashCrowd], t: float) -> float:
    factor = 1.0
    for c in crowds:
        if c.at <= t < c.at + c.duration:
            # Rises to the full factor in a tenth of the duration, then fades linearly.
            x = (t - c.at) / c.duration
            shape = x / 0.1 if x < 0.1 else 1.0 - (x - 0.1) / 0.9
            factor = max(factor, 1.0 + (c.factor - 1.0) * shape)
    return factor


class PatternLoad:
    """Generated demand: constant, daily (peak at ``peak_hour``) or weekly (quieter weekends)."""

    def __init__(self, spec: LoadSpec, start: float, seed: int) -> None:
        self._spec = spec
        self._start = start
        self._seed = seed

    def demand(self, t: float) -> float:
        s = self._spec
        ts = self._start + t
        if s.pattern == "constant":
            level = 1.0
        else:
            hour = (ts % DAY) / 3600.0
            daily = 0.5 + 0.5 * math.cos(2 * math.pi * (hour - s.peak_hour) / 24.0)
            level = s.base + (1.0 - s.base) * daily
            if s.pattern == "weekly":
                weekday = int(ts // DAY + 3) % 7  # 1970-01-01 was a Thursday; 5, 6 = weekend
                level *= 0.6 if weekday >= 5 else 1.0
        level *= 1.0 + s.noise * _noise(ts, self._seed)
        return max(0.0, s.peak * level * _flash_factor(s.flash_crowds, t))


def load_source(spec: LoadSpec, resolve: Path | None, start: float, seed: int) -> LoadSource:
    """The source a workload's ``load`` describes (``resolve`` is the scenario's folder)."""
    if spec.trace is not None:
        path = spec.trace if spec.trace.is_absolute() or resolve is None else resolve / spec.trace
        return TraceLoad(read_trace(path), spec.peak, spec.offset, spec.flash_crowds)
    return PatternLoad(spec, start, seed)
