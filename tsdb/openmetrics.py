"""Moving series to and from Prometheus tooling in the OpenMetrics text format.

The export is what ``promtool tsdb create-blocks-from openmetrics`` reads, so a foresight
store can be loaded into Prometheus. The import reads OpenMetrics or the Prometheus text
format (:mod:`tsdb.textstream`) from a file of any size in bounded memory: pieces of
``chunk_bytes`` are parsed and their samples appended in batches of up to a million, so the
store seals blocks as the file goes by. Samples may come in any time order.

An import is not all-or-nothing: at an error, the batches appended before it stay (the error
says how many samples). Importing the file again once it is fixed is safe, since reads
count a sample that was written twice (same series and time) once.

Staleness markers have no representation in OpenMetrics and are left out of exports. Types
are not stored, so every family is exported as ``unknown``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple, TextIO

import numpy as np

from tsdb.codec import F64, I32, I64
from tsdb.exposition import ExpositionError
from tsdb.labels import Labels, Matcher, format_labels, metric_name
from tsdb.store import Series, Store, StoreError, stale_mask
from tsdb.textstream import TextFormat, TextReader

CHUNK_BYTES = 4 << 20
# Samples appended to the store at once: enough for whole blocks, 20 MB of columns.
_BATCH = 1_000_000
# A line longer than this is not a sample but a damaged file; stop before memory runs out.
_MAX_LINE_BYTES = 1 << 20
_EOF_TAIL = 64


class OpenMetricsError(ValueError):
    """Input that is not valid exposition text; the message names the file and line."""


def _format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def _format_time(ms: int) -> str:
    """Milliseconds as seconds with three decimals, exactly (no float in between)."""
    sign = "-" if ms < 0 else ""
    whole, frac = divmod(abs(ms), 1000)
    return f"{sign}{whole}.{frac:03d}"


def write_openmetrics(series: Iterable[Series], out: TextIO) -> int:
    """Write series as OpenMetrics text, grouped by metric name; returns samples written."""
    by_name: dict[str, list[Series]] = {}
    for s in series:
        by_name.setdefault(metric_name(s.labels), []).append(s)
    written = 0
    for name in sorted(by_name):
        out.write(f"# TYPE {name} unknown\n")
        for s in sorted(by_name[name], key=lambda x: x.labels):
            prefix = format_labels(s.labels)
            keep = ~stale_mask(s.values)
            for ts, v in zip(s.timestamps[keep].tolist(), s.values[keep].tolist(), strict=True):
                out.write(f"{prefix} {_format_value(v)} {_format_time(ts)}\n")
                written += 1
    out.write("# EOF\n")
    return written


def export_openmetrics(
    store: Store, matchers: Sequence[Matcher], start_ms: int, end_ms: int, out: TextIO
) -> int:
    """Export the matching series in ``[start_ms, end_ms]``; returns samples written."""
    return write_openmetrics(store.select(matchers, start_ms, end_ms), out)


@dataclass(frozen=True)
class ImportProgress:
    """How far an import has come."""

    source: str
    bytes_read: int
    bytes_total: int
    samples: int


@dataclass(frozen=True)
class ImportResult:
    """What an import appended."""

    samples: int
    text_format: TextFormat
    scattered_families: int


def detect_format(head_and_tail: bytes) -> TextFormat:
    """OpenMetrics when the text ends with the ``# EOF`` line it requires, else Prometheus."""
    last = head_and_tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return "openmetrics" if last.strip() == b"# EOF" else "prometheus"


def import_file(
    store: Store,
    path: Path,
    text_format: TextFormat | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    warn: Callable[[str], None] | None = None,
    progress: Callable[[ImportProgress], None] | None = None,
) -> ImportResult:
    """Append every sample of a text file; the format is detected when not given.

    Raises :class:`OpenMetricsError` naming the file and line, or the file's OS error.
    """
    source = str(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise OpenMetricsError(f"{source}: {e.strerror or e}") from e
    with f:
        try:
            total = os.fstat(f.fileno()).st_size
            if text_format is None:
                f.seek(max(total - _EOF_TAIL, 0))
                text_format = detect_format(f.read())
                f.seek(0)
        except OSError as e:
            raise OpenMetricsError(f"{source}: {e.strerror or e}") from e

        def report(done: int, samples: int) -> None:
            if progress is not None:
                progress(ImportProgress(source, done, total, samples))

        return _import(store, _pieces(f, source, chunk_bytes), text_format, source, warn, report)


def import_text(
    store: Store, text: str, text_format: TextFormat, source: str = "<input>"
) -> ImportResult:
    """Append every sample of a text held in memory."""
    piece = _Piece(text, 1, 1 + text.count("\n"), len(text))
    return _import(store, iter([piece]), text_format, source, None, None)


def import_openmetrics(store: Store, text: str, source: str = "<input>") -> int:
    """Append every sample of an OpenMetrics text; returns samples imported.

    Every sample must carry a timestamp. On malformed input :class:`OpenMetricsError` names
    the source and line.
    """
    return import_text(store, text, "openmetrics", source).samples


class _Piece(NamedTuple):
    """Whole lines of a file, the numbers of the first and last, and bytes read so far."""

    text: str
    first_line: int
    last_line: int
    bytes_read: int


def _pieces(f: BinaryIO, source: str, chunk_bytes: int) -> Iterator[_Piece]:
    """A file, piece by piece."""
    carry = b""
    line = 1
    done = 0
    while True:
        try:
            block = f.read(chunk_bytes)
        except OSError as e:
            raise OpenMetricsError(f"{source}: {e.strerror or e}") from e
        done += len(block)
        data = carry + block if carry else block
        cut = data.rfind(b"\n") if block else len(data)
        if cut < 0:
            if len(data) > _MAX_LINE_BYTES:
                raise OpenMetricsError(f"{source}:{line}: line longer than {_MAX_LINE_BYTES} bytes")
            carry = data
            continue
        if cut or block:
            last = line + data.count(b"\n", 0, cut)
            yield _Piece(_decode(data[:cut], source, line), line, last, done)
            line = last + 1
        if not block:
            return
        carry = data[cut + 1 :]


def _decode(data: bytes, source: str, line: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        at = line + data.count(b"\n", 0, e.start)
        raise OpenMetricsError(f"{source}:{at}: not UTF-8 text ({e.reason})") from None


def _import(
    store: Store,
    pieces: Iterable[_Piece],
    text_format: TextFormat,
    source: str,
    warn: Callable[[str], None] | None,
    report: Callable[[int, int], None] | None,
) -> ImportResult:
    def resolve(labels: Labels) -> int:
        try:
            return store.ref(labels)
        except StoreError as e:  # the series limit: refused like a bad label set
            raise ValueError(str(e)) from e

    def on_warning(line: int, message: str) -> None:
        if warn is not None:
            warn(f"{source}:{line}: {message}")

    reader = TextReader(text_format, resolve, on_warning)
    batch = _Batcher(store)
    last_line = 1
    try:
        for piece in pieces:
            batch.add(*reader.feed(piece.text, piece.first_line))
            last_line = piece.last_line
            if report is not None:
                report(piece.bytes_read, reader.samples)
        reader.finish(last_line)
    except ExpositionError as e:
        kept = f" ({batch.appended:,} samples before it were imported)" if batch.appended else ""
        raise OpenMetricsError(f"{source}:{e.line}: {e.reason}{kept}") from None
    batch.flush()
    return ImportResult(batch.appended, text_format, reader.scattered_families)


class _Batcher:
    """Collects columns and appends them to the store a batch at a time."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._size = min(store.settings.head_max_samples, _BATCH)
        self._parts: list[tuple[I32, I64, F64]] = []
        self._pending = 0
        self.appended = 0

    def add(self, sids: I32, ts: I64, values: F64) -> None:
        if len(sids):
            self._parts.append((sids, ts, values))
            self._pending += len(sids)
            if self._pending >= self._size:
                self.flush()

    def flush(self) -> None:
        if not self._parts:
            return
        sids, ts, values = (np.concatenate(column) for column in zip(*self._parts, strict=True))
        self._parts.clear()
        self._pending = 0
        self._store.append_batch(sids, ts, values)
        self.appended += len(sids)
