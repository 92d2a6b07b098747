"""Answers as Prometheus' API writes them, byte for byte where it matters to clients.

Sample values are strings printed as Go's ``strconv.FormatFloat(v, 'f', -1, 64)``, switching
to exponent form below 1e-6 and from 1e21 (``NaN``, ``+Inf``, ``-Inf`` as words); timestamps
are seconds with the milliseconds after the point (``1435781451.781``, or no point when they
are whole). Results are written as text directly: a dashboard's range query returns hundreds
of thousands of points, and one ``json.dumps`` of nested lists costs several times more.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain
from typing import Any, Generic, TypeVar, cast

import msgspec
import numpy as np
import numpy.typing as npt

from promql import QueryResult
from promql.labelsets import LabelTable
from promql.results import RangeColumns, SeriesResult
from tsdb.arrays import distinct_inverse
from tsdb.labels import Labels

K = TypeVar("K")
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


class _Texts(Generic[K]):
    """Texts made of keys by ``make`` (many at once), kept while asked for: a dashboard
    asks for the same series, label values and (for series that hold still) sample values
    at every refresh. At most ``kept``; beyond it all are forgotten, and what the next
    refresh asks for is made again."""

    def __init__(self, make: Callable[[list[K]], list[str]], kept: int = 100_000) -> None:
        self.make = make
        self.kept = kept
        self.known: dict[K, str] = {}

    def many(self, keys: list[K]) -> list[str]:
        """The text of each key."""
        found = list(map(self.known.get, keys))
        missing = [k for k, t in zip(keys, found, strict=True) if t is None]
        if not missing:
            return cast(list[str], found)
        made = dict(zip(missing, self.make(missing), strict=True))
        if len(self.known) + len(made) > self.kept:
            self.known.clear()
        self.known.update(made)
        return [made[k] if t is None else t for k, t in zip(keys, found, strict=True)]


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# Sample values by their bits (-0 is not 0); a refresh prints about 100,000.
_value_texts = _Texts[int](
    lambda bits: _printed(np.array(bits, np.int64).view(np.float64)), 200_000
)
_string_texts = _Texts[str](lambda texts: list(map(_dumps, texts)))
_metric_texts = _Texts[Labels](lambda labels: [_dumps(dict(lb)) for lb in labels])
# Fewer values than this are printed without looking for repeats first.
_FEW = 64


def values_text(values: list[float] | F64) -> list[str]:
    """:func:`value_text` of many values. Values that repeat (states, counts) are printed
    once each (by their bits: ``-0`` is not ``0``), and only if not printed lately; values
    that move, new at every refresh, are printed without looking for repeats."""
    arr = np.asarray(values, dtype=np.float64)
    if len(arr) < _FEW or len(np.unique(arr[:_FEW].view(np.int64))) == _FEW:
        return _printed(arr)
    bits, inverse = np.unique(arr.view(np.int64), return_inverse=True)
    texts = np.array(_value_texts.many(bits.tolist()), dtype=object)
    out: list[str] = texts[inverse.reshape(-1)].tolist()
    return out


def _printed(arr: F64) -> list[str]:
    """:func:`value_text` of many values: those msgspec prints as Go does in one call, only
    the rest (tiny and huge magnitudes, infinities, NaN) one by one."""
    magnitude = np.abs(arr)
    fast = ((magnitude >= _SHORTEST_FROM) & (magnitude < _SHORTEST_BELOW)) | (arr == 0)
    if fast.all():
        return _shortest(arr)
    out = np.empty(len(arr), dtype=object)
    out[fast] = _shortest(arr[fast])
    out[~fast] = [value_text(v) for v in arr[~fast].tolist()]
    texts: list[str] = out.tolist()
    return texts


# msgspec prints a float as the shortest decimal that reads back as it, in positional form
# from 1e-5 up to 1e16 (whole numbers with ".0"), as Go's 'f' form with precision -1 does.
_SHORTEST_FROM = 1e-5
_SHORTEST_BELOW = 1e16
_JSON = msgspec.json.Encoder()


def _shortest(arr: F64) -> list[str]:
    """Values with magnitudes from 1e-5 up to 1e16, or zero, printed by one JSON encoding
    of them all (no value's text holds a comma; a fraction ".0" marks a whole number)."""
    if not len(arr):
        return []
    text = _JSON.encode(arr.tolist()).decode()
    texts = (text[1:-1] + ",").replace(".0,", ",").split(",")
    texts.pop()
    return texts


def timestamp_text(ms: int) -> str:
    """Milliseconds as seconds with a three-digit fraction, as Prometheus writes them."""
    if ms < 0:
        return "-" + timestamp_text(-ms)
    seconds, fraction = divmod(ms, 1000)
    return f"{seconds}.{fraction:03d}" if fraction else str(seconds)


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
        # One join of every row's pieces: the end of the row before and '{"metric":', its
        # labels' pieces (the last one opening its point), its value.
        point = f',"value":[{timestamp_text(result.timestamp_ms)},"'
        pieces = zip(
            ['{"metric":'] + ['"]},{"metric":'] * (len(values) - 1),
            *_metric_columns(table, point),
            values_text(values),
            strict=True,
        )
        rows = "".join(chain.from_iterable(pieces)) + '"]}' if len(values) else ""
        return f'{{"resultType":"vector","result":[{rows}]}}', truncated
    series = result.series
    if limit and len(series) > limit:
        series, truncated = series[:limit], True
    return f'{{"resultType":"matrix","result":[{series_data(series)}]}}', truncated


def metric_texts(table: LabelTable) -> list[str]:
    """Each row's labels as the JSON object of its tuple."""
    return list(map("".join, zip(*_metric_columns(table), strict=True)))


def _metric_columns(table: LabelTable, then: str = "") -> list[list[str]]:
    """The pieces of each row's labels' JSON object (the last one followed by ``then``),
    a column of pieces at a time: each distinct value is encoded once, and no row's text
    is put together here (joined with the rest of an answer, the pieces are copied once)."""
    n, k = table.codes.shape
    present = table.codes != 0
    # Whether a row has a label before column j: its piece then begins with a comma.
    after = np.zeros((n, k), dtype=np.intp)
    if k > 1:
        after[:, 1:] = np.logical_or.accumulate(present[:, :-1], axis=1)
    columns: list[list[str]] = []
    for j, name in enumerate(table.names):
        distinct, inverse = distinct_inverse(table.codes[:, j])
        texts = np.array(_string_texts.many(table.strings.decode(distinct).tolist()), dtype=object)
        key = _dumps(name)
        # Absent (code 0): no key (index 2 of the keys), no value.
        keys = np.array([f"{{{key}:", f",{key}:", ""], dtype=object)
        texts[distinct == 0] = ""
        columns.append(keys[np.where(present[:, j], after[:, j], 2)].tolist())
        columns.append(texts[inverse.reshape(n)].tolist())
    closing = np.array(["{}" + then, "}" + then], dtype=object)
    closing = closing[present.any(axis=1).astype(np.intp)]
    columns.append(closing.tolist())
    return columns


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
    metrics = _metric_texts.many([s.labels for s in series])
    return ",".join(
        f'{{"metric":{m},"values":[{",".join(_points(s.timestamps.tolist(), s.values.tolist()))}]}}'
        for m, s in zip(metrics, series, strict=True)
    )


Chunk = bytes | memoryview
"""A piece of an answer's text: a memoryview is a slice of a kept answer, not copied."""
_TRAILER = 2  # "]}" after a series' points


_SEPARATORS = np.array([b"", b","], dtype=object)


# What each series' object in a matrix begins with, up to its first point.
_heads = _Texts[Labels](
    lambda labels: [f'{{"metric":{m},"values":[' for m in _metric_texts.many(labels)]
)


@dataclass(frozen=True, slots=True)
class EncodedMatrix:
    """A range result as the JSON text (UTF-8) of its ``result`` array, on the grid of steps
    ``first_ms + k * step_ms``, that can be cut to fewer steps and followed by later ones
    without encoding its points again (see :func:`assemble`).

    Series ``i`` (sorted by labels, as answers list them) is the object
    ``{"metric":...,"values":[...]}`` that begins with ``heads[i]`` and ends at byte
    ``object_ends[i]`` of ``text``; objects are joined by commas. ``counts[i, k]`` of its
    points are at steps up to ``k``; its first point at step ``k`` or later begins at byte
    ``starts[i, k]``, and its last point at step ``k`` or before ends at ``ends[i, k]``
    (where there is no such point, the number means nothing). So the points of steps
    ``a..b`` are ``text[starts[i, a]:ends[i, b]]``, one slice, when there are some. Every
    series has at least one point.
    """

    labels: list[Labels]
    heads: list[bytes]
    text: bytes
    first_ms: int
    step_ms: int
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
        arrays = (self.counts, self.starts, self.ends, self.object_ends)
        return len(self.text) + sum(a.nbytes for a in arrays) + 200 * len(self.labels)

    def data(self, limit: int = 0) -> tuple[list[Chunk], bool]:
        """The ``data`` of the answer, in pieces, and whether ``limit`` (0: none) cut series
        off."""
        text: Chunk = self.text
        truncated = False
        if limit and len(self.labels) > limit:
            text, truncated = memoryview(self.text)[: int(self.object_ends[limit - 1])], True
        return [b'{"resultType":"matrix","result":[', text, b"]}"], truncated

    def step_of(self, ms: int) -> int:
        """The grid's step number of a time on it."""
        return (ms - self.first_ms) // self.step_ms


def _empty(first_ms: int, step_ms: int, steps: int) -> EncodedMatrix:
    counts = np.zeros((0, steps), np.int32)
    offsets = np.zeros((0, steps), np.int64)
    return EncodedMatrix(
        [], [], b"", first_ms, step_ms, counts, offsets, offsets, np.zeros(0, np.int64)
    )


def encode_matrix(columns: RangeColumns, step_ms: int) -> EncodedMatrix:
    """A range query's result, evaluated every ``step_ms``, as text (series without points
    are left out).

    The text is one join of three pieces per point: its opening ``[t,"`` (the series' head
    before its first one), its value and its closing; offsets come from the pieces'
    lengths, so no point is made a string of its own."""
    times, present, values = columns.times, columns.present, columns.values
    first_ms = int(times[0]) if len(times) else 0
    counts = np.cumsum(present, axis=1, dtype=np.int32)
    totals = counts[:, -1].astype(np.int64) if len(times) else np.zeros(len(present), np.int64)
    keep = np.flatnonzero(totals)
    if not len(keep):
        return _empty(first_ms, step_ms, len(times))
    labels = columns.labels
    if len(keep) < len(labels):
        labels = [labels[i] for i in keep.tolist()]
        counts, totals, present, values = counts[keep], totals[keep], present[keep], values[keep]
    rows, cols = np.nonzero(present)  # series by series, each in time order
    firsts = np.cumsum(totals) - totals
    lasts = firsts + totals - 1
    openings = [f'[{timestamp_text(t)},"' for t in times.tolist()]
    opening_lengths = np.fromiter(map(len, openings), np.int64, len(openings))
    texts = values_text(values[rows, cols])
    value_lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    head_texts = _heads.many(labels)
    heads = [h.encode() for h in head_texts]
    head_lengths = np.fromiter(map(len, heads), np.int64, len(heads))
    # Each point: its opening, value, '"]' and a comma; a series' last point closes the
    # object too, and every object but the last is followed by a comma.
    pieces = np.empty((len(rows), 3), dtype=object)
    pieces[:, 0] = np.array(openings, dtype=object)[cols]
    pieces[firsts, 0] = np.array(head_texts, dtype=object) + pieces[firsts, 0]
    pieces[:, 1] = texts
    pieces[:, 2] = '"],'
    pieces[lasts, 2] = '"]]},'
    pieces[-1, 2] = '"]]}'
    text = "".join(pieces.ravel().tolist()).encode()
    point_lengths = opening_lengths[cols] + value_lengths + 2
    lead = np.zeros(len(rows), np.int64)
    lead[firsts] = head_lengths
    spans = lead + point_lengths + 1
    spans[lasts] += _TRAILER
    spans[-1] -= 1
    ends_of_spans = np.cumsum(spans)
    starts = ends_of_spans - spans + lead
    object_ends = ends_of_spans[lasts] - 1
    object_ends[-1] += 1
    assert len(text) == int(object_ends[-1])
    by_start, by_end = _by_step(present, starts, starts + point_lengths)
    return EncodedMatrix(
        labels, heads, text, first_ms, step_ms, counts, by_start, by_end, object_ends
    )


def _by_step(present: npt.NDArray[np.bool_], starts: I64, ends: I64) -> tuple[I64, I64]:
    """Where each point begins and ends (points in the order of ``present``'s cells, row
    by row) as :class:`EncodedMatrix` keeps them: by series and step, for the first point
    at a step or after it, and the last at a step or before it."""
    n, steps = present.shape
    if len(starts) == n * steps:
        return starts.reshape(n, steps), ends.reshape(n, steps)
    by_start = np.zeros((n, steps), np.int64)
    by_end = np.zeros((n, steps), np.int64)
    by_start[present] = starts
    by_end[present] = ends
    step = np.arange(steps)
    # The step of the next point (from the right, the smallest step with one) and of the
    # one before (from the left, the largest); where none is, any step will do.
    after = np.minimum.accumulate(np.where(present, step, steps - 1)[:, ::-1], axis=1)[:, ::-1]
    before = np.maximum.accumulate(np.where(present, step, 0), axis=1)
    return (
        np.take_along_axis(by_start, after, axis=1),
        np.take_along_axis(by_end, before, axis=1),
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
    """What one part gives each series: its points' counts by step (from the part's first
    step), their number, their text span and the offsets of its steps in the part's text."""

    counts: npt.NDArray[np.int32]
    points: I64
    lo: I64
    hi: I64
    starts: I64
    ends: I64

    def rows(self, keep: I64) -> None:
        """Only the series ``keep``."""
        self.counts, self.points = self.counts[keep], self.points[keep]
        self.lo, self.hi = self.lo[keep], self.hi[keep]
        self.starts, self.ends = self.starts[keep], self.ends[keep]


def _cut(part: Part) -> _Cut:
    m, rows = part.matrix, part.rows
    first, last = part.first, part.last
    width = last - first + 1
    if not m.labels:
        none = np.zeros(len(rows), np.int64)
        offsets = np.zeros((len(rows), width), np.int64)
        return _Cut(np.zeros((len(rows), width), np.int32), none, none, none, offsets, offsets)
    window = slice(first, last + 1)
    has = rows >= 0
    every = bool(has.all())
    if every and len(rows) == len(m.labels) and bool((rows[1:] > rows[:-1]).all()):
        # Every series of the matrix, in its order (the usual cut): views, no copies.
        counts, starts, ends = m.counts[:, window], m.starts[:, window], m.ends[:, window]
        before = m.counts[:, first - 1] if first else None
    else:
        r = np.where(has, rows, 0)
        counts, starts, ends = m.counts[r, window], m.starts[r, window], m.ends[r, window]
        before = m.counts[r, first - 1] if first else None
    if before is not None:
        counts = counts - before[:, None]
    if not every:
        counts = np.where(has[:, None], counts, 0).astype(np.int32)
    points = counts[:, -1].astype(np.int64)
    some = points > 0
    lo = np.where(some, starts[:, 0], 0)
    hi = np.where(some, ends[:, -1], 0)
    return _Cut(counts, points, lo, hi, starts, ends)


def assemble(labels: list[Labels], heads: list[bytes], parts: Sequence[Part]) -> EncodedMatrix:
    """The series ``labels`` (sorted; their objects' heads ``heads``) over the steps of
    ``parts`` one after the other on one grid; series without points are left out.
    Points are copied as text, never encoded again: each series' run of points in each
    part is one slice of that part's text, and the text one join of them; their offsets
    are the part's, moved by where the run now begins."""
    first = parts[0]
    cuts = [_cut(p) for p in parts]
    totals = sum((c.points for c in cuts), np.zeros(len(labels), np.int64))
    keep = np.flatnonzero(totals)
    if len(keep) < len(labels):
        labels = [labels[i] for i in keep.tolist()]
        heads = [heads[i] for i in keep.tolist()]
        for c in cuts:
            c.rows(keep)
    first_ms = first.matrix.first_ms + first.first * first.matrix.step_ms
    if not labels:
        return _empty(first_ms, first.matrix.step_ms, sum(c.counts.shape[1] for c in cuts))
    head_lengths = np.fromiter(map(len, heads), np.int64, len(heads))
    columns: list[Sequence[Chunk]] = [heads]
    seen = np.zeros(len(labels), bool)  # whether a series had points in an earlier part
    at = head_lengths.copy()  # where the next run of points begins, from the object's start
    ats = []
    for part, c in zip(parts, cuts, strict=True):
        some = c.points > 0
        comma = seen & some
        columns.append(_SEPARATORS[comma.astype(np.intp)].tolist())
        at += comma
        ats.append(at.copy())
        text = memoryview(part.matrix.text)
        columns.append(list(map(text.__getitem__, map(slice, c.lo.tolist(), c.hi.tolist()))))
        at += c.hi - c.lo
        seen |= some
    columns.append([b"]},"] * (len(labels) - 1) + [b"]}"])
    sizes = at + _TRAILER
    object_ends = np.cumsum(sizes + 1) - 1
    object_starts = object_ends - sizes
    shifts = [object_starts + begin - c.lo for c, begin in zip(cuts, ats, strict=True)]
    counts, starts, ends = _moved(cuts, shifts)
    joined = b"".join(chain.from_iterable(zip(*columns, strict=True)))
    assert len(joined) == int(object_ends[-1])
    return EncodedMatrix(
        labels,
        heads,
        joined,
        first_ms,
        first.matrix.step_ms,
        counts,
        starts,
        ends,
        object_ends,
    )


def _moved(cuts: list[_Cut], shifts: list[I64]) -> tuple[npt.NDArray[np.int32], I64, I64]:
    """Counts and offsets of the parts' steps in the assembled text: each part's moved by
    its series' shifts (counts by the points of the parts before), and, where a series has
    no point at or after a step within its part, the first point of a later part (no point
    at or before: the last of an earlier one)."""
    n = len(shifts[0])
    widths = [c.counts.shape[1] for c in cuts]
    bounds = np.cumsum([0, *widths]).tolist()
    counts = np.empty((n, bounds[-1]), np.int32)
    starts = np.empty((n, bounds[-1]), np.int64)
    ends = np.empty((n, bounds[-1]), np.int64)
    done = np.zeros(n, np.int32)
    for c, shift, a, b in zip(cuts, shifts, bounds, bounds[1:], strict=False):
        np.add(c.counts, done[:, None], out=counts[:, a:b])
        np.add(c.starts, shift[:, None], out=starts[:, a:b])
        np.add(c.ends, shift[:, None], out=ends[:, a:b])
        done += c.points.astype(np.int32)
    # Most series have a point at every step: nothing to fill in then.
    full = [bool((c.points == w).all()) for c, w in zip(cuts, widths, strict=True)]
    later = np.zeros(n, np.int64)  # the first point of the parts after, where one is
    for j in reversed(range(len(cuts))):
        c, a, b = cuts[j], bounds[j], bounds[j + 1]
        if not full[j]:
            # No point at or after a step: the count up to the step before is the total.
            upto_before = np.zeros_like(c.counts)
            upto_before[:, 1:] = c.counts[:, :-1]
            none_after = upto_before == c.counts[:, -1:]
            np.copyto(starts[:, a:b], later[:, None], where=none_after)
        later = np.where(c.points > 0, c.lo + shifts[j], later)
    earlier = np.zeros(n, np.int64)  # the last point of the parts before, where one is
    for j, c in enumerate(cuts):
        if not full[j]:
            np.copyto(ends[:, bounds[j] : bounds[j + 1]], earlier[:, None], where=c.counts == 0)
        earlier = np.where(c.points > 0, c.hi + shifts[j], earlier)
    return counts, starts, ends


def _capped(notes: Sequence[str], kind: str) -> list[str]:
    if len(notes) <= MAX_ANNOTATIONS:
        return list(notes)
    omitted = len(notes) - MAX_ANNOTATIONS
    return [*notes[:MAX_ANNOTATIONS], f"{omitted} more {kind} annotations omitted"]


def success(
    data: str | Sequence[Chunk], warnings: Sequence[str] = (), infos: Sequence[str] = ()
) -> bytes:
    """The success envelope around ``data`` (JSON text, or pieces of it in UTF-8); at most
    ten warnings and ten infos, then a count of the others, as Prometheus does."""
    out: list[Chunk] = [b'{"status":"success","data":']
    if isinstance(data, str):
        out.append(data.encode())
    else:
        out += data
    if warnings:
        out += [b',"warnings":', _dumps(_capped(warnings, "warning")).encode()]
    if infos:
        out += [b',"infos":', _dumps(_capped(infos, "info")).encode()]
    out.append(b"}")
    return b"".join(out)


def success_json(data: Any, warnings: Sequence[str] = ()) -> bytes:
    """:func:`success` for data given as Python values."""
    return success(_dumps(data), warnings)
