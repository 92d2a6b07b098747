"""Answers as Prometheus' API writes them, byte for byte where it matters to clients.

Sample values are strings printed as Go's ``strconv.FormatFloat(v, 'f', -1, 64)``, switching
to exponent form below 1e-6 and from 1e21 (``NaN``, ``+Inf``, ``-Inf`` as words); timestamps
are seconds with the milliseconds after the point (``1435781451.781``, or no point when they
are whole). Results are written as text directly: a dashboard's range query returns hundreds
of thousands of points, and one ``json.dumps`` of nested lists costs several times more.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from promql import QueryResult
from promql.labelsets import LabelTable
from promql.results import RangeColumns, SeriesResult
from tsdb.arrays import concat_ranges
from tsdb.labels import Labels

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

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


def values_text(values: list[float] | F64) -> list[str]:
    """:func:`value_text` of many values, by kind: whole numbers through numpy's integer
    printing, other plain decimals as ``repr`` gives them, only the rest (exponents,
    ``-0``, infinities, NaN) one by one."""
    arr = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(arr)
    # repr prints in positional form from 1e-4 up to 1e16, as Go's 'f' form does.
    positional = (magnitude >= 1e-4) & (magnitude < 1e15)
    whole = (arr == np.trunc(arr)) & (positional | ((arr == 0) & ~np.signbit(arr)))
    out = np.empty(len(arr), dtype=object)
    out[whole] = arr[whole].astype(np.int64).astype(str).astype(object)
    plain = positional & ~whole
    out[plain] = list(map(repr, arr[plain].tolist()))
    rest = ~(whole | plain)
    if rest.any():
        out[rest] = [value_text(v) for v in arr[rest].tolist()]
    texts: list[str] = out.tolist()
    return texts


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
    if kind == "vector":
        columns = result.columns()
        table, values = columns.table, columns.values
        if limit and len(table) > limit:
            table, values, truncated = table.take(np.arange(limit)), values[:limit], True
        at = timestamp_text(result.timestamp_ms)
        parts = [
            f'{{"metric":{m},"value":[{at},"{v}"]}}'
            for m, v in zip(metric_texts(table), values_text(values.tolist()), strict=True)
        ]
        return f'{{"resultType":"vector","result":[{",".join(parts)}]}}', truncated
    series = result.series
    if limit and len(series) > limit:
        series, truncated = series[:limit], True
    return f'{{"resultType":"matrix","result":[{series_data(series)}]}}', truncated


# JSON strings of label names and values: a dashboard asks for the same ones every refresh.
_strings: dict[str, str] = {}


def _json_string(text: str) -> str:
    made = _strings.get(text)
    if made is None:
        if len(_strings) >= _METRICS_KEPT:
            _strings.clear()
        made = _strings[text] = _dumps(text)
    return made


def metric_texts(table: LabelTable) -> list[str]:
    """Each row's labels as the JSON object :func:`_metric` makes of its tuple, made a
    column at a time: each distinct value is encoded once, and rows are put together by
    numpy's object arrays rather than a Python loop."""
    n, k = table.codes.shape
    present = table.codes != 0
    # Whether a row has a label before column j: its piece then begins with a comma.
    after = np.zeros((n, k), dtype=np.intp)
    if k > 1:
        after[:, 1:] = np.logical_or.accumulate(present[:, :-1], axis=1)
    out = np.full(n, "", dtype=object)
    for j, name in enumerate(table.names):
        distinct, inverse = np.unique(table.codes[:, j], return_inverse=True)
        texts = np.array(
            [_json_string(v) for v in table.strings.decode(distinct).tolist()], dtype=object
        )
        key = _json_string(name)
        heads = np.array([f"{{{key}:", f",{key}:"], dtype=object)
        piece = heads[after[:, j]] + texts[inverse.reshape(n)]
        piece[~present[:, j]] = ""
        out += piece
    done: list[str] = np.where(present.any(axis=1), out + "}", "{}").tolist()
    return done


def _points(times: list[int], values: list[float]) -> list[str]:
    """``[t,"v"]`` of each point; the series of a result share their steps, so each
    step's opening is made once."""
    openings: dict[int, str] = {}
    for t in times:
        if t not in openings:
            openings[t] = f'[{timestamp_text(t)},"'
    return [f'{openings[t]}{v}"]' for t, v in zip(times, values_text(values), strict=True)]


def series_data(series: Sequence[SeriesResult]) -> str:
    """The inside of a matrix answer's ``result`` for series at any timestamps (an instant
    query's range vector), in their order."""
    return ",".join(
        f'{{"metric":{_metric(s.labels)},"values":['
        f"{','.join(_points(s.timestamps.tolist(), s.values.tolist()))}]}}"
        for s in series
    )


# '{"metric":' and ',"values":[' around a series' metric, '],}' after its points.
_HEADER = 21
_TRAILER = 2


@dataclass(frozen=True, slots=True)
class EncodedMatrix:
    """A range result as the JSON text of its ``result`` array, on the grid of steps
    ``first_ms + k * step_ms``, that can be cut to fewer steps and followed by later ones
    without encoding its points again (see :func:`assemble`).

    Series ``i`` (sorted by labels, as answers list them) is the object
    ``{"metric":...,"values":[...]}`` that ends at ``text[object_ends[i]]``; objects are
    joined by commas. Its points are numbered from ``firsts[i]`` on, in time order; point
    ``j`` is ``text[starts[j]:ends[j]]``, and ``counts[i, k]`` of the series' points are at
    steps up to ``k``. Every series has at least one point.
    """

    labels: list[Labels]
    metrics: list[str]
    text: str
    first_ms: int
    step_ms: int
    firsts: I64
    counts: npt.NDArray[np.int32]
    starts: I64
    ends: I64
    object_ends: I64

    @property
    def steps(self) -> int:
        """Steps of the grid."""
        return int(self.counts.shape[1])

    @property
    def last_ms(self) -> int:
        """The grid's last step."""
        return self.first_ms + (self.steps - 1) * self.step_ms

    @property
    def nbytes(self) -> int:
        """Roughly what it holds in memory."""
        arrays = (self.firsts, self.counts, self.starts, self.ends, self.object_ends)
        return len(self.text) + sum(a.nbytes for a in arrays) + 200 * len(self.labels)

    def data(self, limit: int = 0) -> tuple[str, bool]:
        """The ``data`` of the answer, and whether ``limit`` (0: none) cut series off."""
        text, truncated = self.text, False
        if limit and len(self.labels) > limit:
            text, truncated = text[: int(self.object_ends[limit - 1])], True
        return f'{{"resultType":"matrix","result":[{text}]}}', truncated

    def step_of(self, ms: int) -> int:
        """The grid's step number of a time on it."""
        return (ms - self.first_ms) // self.step_ms


def encode_matrix(columns: RangeColumns, step_ms: int) -> EncodedMatrix:
    """A range query's result, evaluated every ``step_ms``, as text (series without points
    are left out)."""
    times, present = columns.times, columns.present
    if not present.any():
        empty = np.zeros(0, np.int64)
        counts = np.zeros((0, len(times)), np.int32)
        first_ms = int(times[0]) if len(times) else 0
        return EncodedMatrix([], [], "", first_ms, step_ms, empty, counts, empty, empty, empty)
    rows, cols = np.nonzero(present)
    texts = _points(times[cols].tolist(), columns.values[rows, cols].tolist())
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    counts = np.cumsum(present, axis=1, dtype=np.int32)
    totals = counts[:, -1].astype(np.int64)
    keep = np.flatnonzero(totals)
    labels = columns.labels
    if len(keep) < len(labels):
        labels = [labels[i] for i in keep.tolist()]
        counts, totals = counts[keep], totals[keep]
    firsts = np.cumsum(totals) - totals
    metrics = [_metric(lb) for lb in labels]
    # Offsets as if points were joined by commas, all series end to end: each series'
    # own are these less those of its first point, plus where its points begin.
    joined = np.cumsum(lengths + 1) - (lengths + 1)
    seg = np.repeat(np.arange(len(labels), dtype=np.int64), totals)
    metric_lengths = np.fromiter(map(len, metrics), np.int64, len(metrics))
    sizes = metric_lengths + _HEADER + np.add.reduceat(lengths, firsts) + totals - 1 + _TRAILER
    object_ends = np.cumsum(sizes + 1) - 1
    points_at = object_ends - sizes + metric_lengths + _HEADER
    starts = points_at[seg] + joined - joined[firsts][seg]
    objects = [
        f'{{"metric":{m},"values":[{",".join(texts[f : f + k])}]}}'
        for m, f, k in zip(metrics, firsts.tolist(), totals.tolist(), strict=True)
    ]
    return EncodedMatrix(
        labels,
        metrics,
        ",".join(objects),
        int(times[0]),
        step_ms,
        firsts,
        counts,
        starts,
        starts + lengths,
        object_ends,
    )


@dataclass(frozen=True)
class Part:
    """Steps ``first..last`` (grid numbers) of ``matrix``; ``rows[i]`` is the row there of
    the ``i``-th series of the matrix assembled from parts (-1: none)."""

    matrix: EncodedMatrix
    first: int
    last: int
    rows: I64


@dataclass
class _Cut:
    """What one part gives each series: its points' numbers, count and text span."""

    counts: npt.NDArray[np.int32]
    first_point: I64
    points: I64
    lo: I64
    hi: I64


def _cut(part: Part) -> _Cut:
    m, rows = part.matrix, part.rows
    width = part.last - part.first + 1
    if not m.labels:
        none = np.zeros(len(rows), np.int64)
        return _Cut(np.zeros((len(rows), width), np.int32), none, none, none, none)
    has = rows >= 0
    r = np.where(has, rows, 0)
    counts = m.counts[r, part.first : part.last + 1]
    before = m.counts[r, part.first - 1] if part.first else np.zeros(len(r), np.int32)
    counts = np.where(has[:, None], counts - before[:, None], 0).astype(np.int32)
    points = counts[:, -1].astype(np.int64)
    first_point = m.firsts[r] + before
    some = points > 0
    lo = np.where(some, m.starts[np.where(some, first_point, 0)], 0)
    hi = np.where(some, m.ends[np.where(some, first_point + points - 1, 0)], 0)
    return _Cut(counts, first_point, points, lo, hi)


def assemble(labels: list[Labels], metrics: list[str], parts: Sequence[Part]) -> EncodedMatrix:
    """The series ``labels`` (sorted; their metrics' text ``metrics``) over the steps of
    ``parts`` one after the other on one grid; series without points are left out.
    Points are copied as text, never encoded again."""
    first = parts[0]
    cuts = [_cut(p) for p in parts]
    totals = sum((c.points for c in cuts), np.zeros(len(labels), np.int64))
    keep = np.flatnonzero(totals)
    if len(keep) < len(labels):
        labels = [labels[i] for i in keep.tolist()]
        metrics = [metrics[i] for i in keep.tolist()]
        totals = totals[keep]
        for c in cuts:
            c.counts, c.first_point, c.points = c.counts[keep], c.first_point[keep], c.points[keep]
            c.lo, c.hi = c.lo[keep], c.hi[keep]
    metric_lengths = np.fromiter(map(len, metrics), np.int64, len(metrics))
    spans = [c.hi - c.lo for c in cuts]
    pieces = sum(((c.points > 0).astype(np.int64) for c in cuts), np.zeros(len(labels), np.int64))
    sizes = metric_lengths + _HEADER + sum(spans, np.zeros(len(labels), np.int64))
    sizes += pieces - 1 + _TRAILER
    object_ends = np.cumsum(sizes + 1) - 1
    at = object_ends - sizes + metric_lengths + _HEADER
    firsts = np.cumsum(totals) - totals
    m = int(totals.sum())
    starts = np.empty(m, np.int64)
    ends = np.empty(m, np.int64)
    done = np.zeros(len(labels), np.int64)
    blocks = []
    for part, c, span in zip(parts, cuts, spans, strict=True):
        source = concat_ranges(c.first_point, c.first_point + c.points)
        dest = concat_ranges(firsts + done, firsts + done + c.points)
        shift = np.repeat(at - c.lo, c.points)
        starts[dest] = part.matrix.starts[source] + shift
        ends[dest] = part.matrix.ends[source] + shift
        blocks.append(c.counts + done[:, None].astype(np.int32))
        done += c.points
        at = at + np.where(c.points > 0, span + 1, 0)
    texts = [_pieces(p.matrix.text, c) for p, c in zip(parts, cuts, strict=True)]
    if len(texts) == 1:
        middles = texts[0]
    else:
        middles = [",".join(filter(None, group)) for group in zip(*texts, strict=True)]
    text = ",".join(
        f'{{"metric":{m},"values":[{middle}]}}' for m, middle in zip(metrics, middles, strict=True)
    )
    assert len(text) == (int(object_ends[-1]) if labels else 0)
    return EncodedMatrix(
        labels,
        metrics,
        text,
        first.matrix.first_ms + first.first * first.matrix.step_ms,
        first.matrix.step_ms,
        firsts,
        np.concatenate(blocks, axis=1),
        starts,
        ends,
        object_ends,
    )


def _pieces(text: str, cut: _Cut) -> list[str]:
    return [text[a:b] for a, b in zip(cut.lo.tolist(), cut.hi.tolist(), strict=True)]


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
