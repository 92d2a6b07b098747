"""Answers as Prometheus' API writes them, byte for byte where it matters to clients.

Sample values are strings printed as Go's ``strconv.FormatFloat(v, 'f', -1, 64)``, switching
to exponent form below 1e-6 and from 1e21 (``NaN``, ``+Inf``, ``-Inf`` as words); timestamps
are seconds with the milliseconds after the point (``1435781451.781``, or no point when they
are whole). Results are written as text directly: a dashboard's range query returns hundreds
of thousands of points, and one ``json.dumps`` of nested lists costs several times more.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from typing import Any

import numpy as np
import numpy.typing as npt

from promql import QueryResult
from promql.results import SeriesResult
from tsdb.labels import Labels

_SPECIAL = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}
MAX_ANNOTATIONS = 10


def value_text(v: float) -> str:
    """A sample value as Prometheus' JSON prints it (without the quotes)."""
    text = repr(v)
    if text.endswith(".0"):
        return text[:-2]
    if "e" in text:
        if abs(v) < 1e-6 or abs(v) >= 1e21:
            return text
        return format(Decimal(text), "f")
    return _SPECIAL.get(text, text)


def values_text(values: list[float]) -> list[str]:
    """:func:`value_text` of many values: ``repr`` is already right for most of them."""
    out = list(map(repr, values))
    for i, text in enumerate(out):
        if text[-1] in "0fn" or "e" in text:  # "x.0", inf, nan, exponent forms
            out[i] = value_text(values[i])
    return out


def timestamp_text(ms: int) -> str:
    """Milliseconds as seconds with a three-digit fraction, as Prometheus writes them."""
    if ms < 0:
        return "-" + timestamp_text(-ms)
    seconds, fraction = divmod(ms, 1000)
    return f"{seconds}.{fraction:03d}" if fraction else str(seconds)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# Dashboards ask for the same series at every refresh: each label set's JSON is made once.
_metrics: dict[Labels, str] = {}
_METRICS_KEPT = 100_000


def _metric(labels: Labels) -> str:
    text = _metrics.get(labels)
    if text is None:
        if len(_metrics) >= _METRICS_KEPT:
            _metrics.clear()
        text = _metrics[labels] = _dumps(dict(labels))
    return text


def query_data(result: QueryResult, limit: int = 0) -> tuple[str, bool]:
    """The ``data`` of a query answer as JSON text, and whether ``limit`` (0: none) cut
    series off."""
    kind = result.type
    truncated = False
    if kind == "scalar":
        point = f'[{timestamp_text(result.timestamp_ms)},"{value_text(result.scalar)}"]'
        return f'{{"resultType":"scalar","result":{point}}}', False
    if kind == "string":
        point = f"[{timestamp_text(result.timestamp_ms)},{_dumps(result.string)}]"
        return f'{{"resultType":"string","result":{point}}}', False
    parts: list[str] = []
    if kind == "vector":
        columns = result.columns()
        labels = columns.labels()
        values = columns.values.tolist()
        if limit and len(labels) > limit:
            labels, values, truncated = labels[:limit], values[:limit], True
        at = timestamp_text(result.timestamp_ms)
        parts = [
            f'{{"metric":{_metric(lb)},"value":[{at},"{v}"]}}'
            for lb, v in zip(labels, values_text(values), strict=True)
        ]
    else:
        series = result.series
        if limit and len(series) > limit:
            series, truncated = series[:limit], True
        parts = [s.json() for s in encoded_matrix(series)]
    return f'{{"resultType":"{kind}","result":[{",".join(parts)}]}}', truncated


@dataclass(frozen=True, slots=True)
class EncodedSeries:
    """One series of a range result as JSON text: ``points`` are its ``[t,"v"]`` pairs
    joined by commas, point ``i`` at ``times[i]`` (ms) and ending at offset ``ends[i]``
    of ``points``; :meth:`window` and :meth:`joined` cut and extend it without re-encoding.
    (``times`` is a plain array: a refresh searches thousands of series, where numpy's
    per-call cost would be most of the work.)"""

    labels: Labels
    metric: str
    times: array[int]
    points: str
    ends: npt.NDArray[np.int64]

    def json(self) -> str:
        """The series' object of a matrix result."""
        return f'{{"metric":{self.metric},"values":[{self.points}]}}'

    def window(self, first_ms: int, last_ms: int) -> EncodedSeries | None:
        """The points at ``[first_ms, last_ms]``, or None if there are none."""
        times = self.times
        lo = bisect_left(times, first_ms)
        hi = bisect_right(times, last_ms, lo)
        if lo >= hi:
            return None
        if lo == 0 and hi == len(times):
            return self
        begin = int(self.ends[lo - 1]) + 1 if lo else 0
        return EncodedSeries(
            self.labels,
            self.metric,
            times[lo:hi],
            self.points[begin : int(self.ends[hi - 1])],
            self.ends[lo:hi] - begin,
        )

    def joined(self, later: EncodedSeries) -> EncodedSeries:
        """These points, then ``later``'s (all after them)."""
        shift = len(self.points) + 1
        return EncodedSeries(
            self.labels,
            self.metric,
            self.times + later.times,
            f"{self.points},{later.points}",
            np.concatenate([self.ends, later.ends + shift]),
        )

    @property
    def nbytes(self) -> int:
        """Roughly what it holds in memory."""
        return len(self.points) + len(self.metric) + 16 * len(self.times) + 200


def encoded_matrix(series: Sequence[SeriesResult]) -> list[EncodedSeries]:
    """The series of a range result as JSON text, in their order."""
    out = []
    # Series of a range query share their steps: each point's '[time,"' is made once.
    openings: dict[int, str] = {}
    for s in series:
        stamps = s.timestamps.tolist()
        for t in stamps:
            if t not in openings:
                openings[t] = f'[{timestamp_text(t)},"'
        points = [
            f'{openings[t]}{v}"]'
            for t, v in zip(stamps, values_text(s.values.tolist()), strict=True)
        ]
        lengths = accumulate((len(p) + 1 for p in points), initial=-1)
        ends = np.fromiter(lengths, np.int64, len(points) + 1)[1:]
        out.append(
            EncodedSeries(s.labels, _metric(s.labels), array("q", stamps), ",".join(points), ends)
        )
    return out


def matrix_data(matrix: Sequence[EncodedSeries]) -> str:
    """The ``data`` of a range query answer as JSON text."""
    return f'{{"resultType":"matrix","result":[{",".join(s.json() for s in matrix)}]}}'


def _capped(notes: Sequence[str], kind: str) -> list[str]:
    if len(notes) <= MAX_ANNOTATIONS:
        return list(notes)
    omitted = len(notes) - MAX_ANNOTATIONS
    return [*notes[:MAX_ANNOTATIONS], f"{omitted} more {kind} annotations omitted"]


def success(data: str, warnings: Sequence[str] = (), infos: Sequence[str] = ()) -> bytes:
    """The success envelope around ``data`` (JSON text); at most ten warnings and ten infos,
    then a count of the others, as Prometheus does."""
    out = ['{"status":"success","data":', data]
    if warnings:
        out += [',"warnings":', _dumps(_capped(warnings, "warning"))]
    if infos:
        out += [',"infos":', _dumps(_capped(infos, "info"))]
    out.append("}")
    return "".join(out).encode()


def success_json(data: Any, warnings: Sequence[str] = ()) -> bytes:
    """:func:`success` for data given as Python values."""
    return success(_dumps(data), warnings)
