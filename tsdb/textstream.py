"""Reading big files of the Prometheus text format or OpenMetrics, one piece at a time.

A :class:`TextReader` is fed whole lines, a few megabytes at a time, and turns each piece
into columns (series id, millisecond timestamp, value) ready for ``Store.append_batch``. Its
memory is what one piece needs plus one entry per distinct series.

Speed: a sample line in the layout exporters write (``name{labels} value timestamp``, single
spaces) is split from the right in C, and its series text looked up in a dictionary; only a
series text seen for the first time, and any line in another layout, is parsed in full (by
the lenient reader, which also finds errors). Values and timestamps of a whole piece are
converted by numpy at once; should that fail, the piece is read again line by line to name
the culprit.

Leniency, as ``promtool tsdb create-blocks-from openmetrics`` has it: a metric family may
appear in several places (each such family is reported once through ``warn``), blank and
indented lines are allowed, exemplars are ignored, and so are the ``_created`` samples of
counters, histograms and summaries (they hold a creation time, not a measurement). Errors are
:class:`~tsdb.exposition.ExpositionError` with the line number.

Formats differ in timestamps: OpenMetrics writes seconds (``1700000000.250``), the Prometheus
text format integer milliseconds. Every sample must carry one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import length_hint
from typing import Literal, NamedTuple

import numpy as np

from tsdb.codec import F64, I32, I64, empty_columns
from tsdb.exposition import ExpositionError, parse_labels, parse_timestamp, parse_value
from tsdb.labels import METRIC_NAME, Labels

TextFormat = Literal["openmetrics", "prometheus"]
TEXT_FORMATS: tuple[TextFormat, ...] = ("openmetrics", "prometheus")

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"(?:[^"\\]*(?:\\.[^"\\]*)*)"\s*')
_OM_TYPES = frozenset(
    {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}
)
_PROM_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
# The sample names a family of each type holds, as suffixes of the family's name (both
# formats: OpenMetrics names a counter family without ``_total``, Prometheus text with it).
_SUFFIXES: dict[str | None, frozenset[str]] = {
    "counter": frozenset({"", "_total", "_created"}),
    "histogram": frozenset({"_bucket", "_count", "_sum", "_created"}),
    "gaugehistogram": frozenset({"_bucket", "_gcount", "_gsum"}),
    "summary": frozenset({"", "_count", "_sum", "_created"}),
    "info": frozenset({"", "_info"}),
}
_PLAIN = frozenset({""})
_ALL_SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info")
_CREATED_IGNORED = frozenset({"counter", "histogram", "summary"})
# Families reported one by one when they appear again; beyond that only counted.
_WARNINGS_NAMED = 10
# The cache of series texts grows with distinct series; beyond this it starts afresh.
_KEYS_KEPT = 1 << 20
# Seconds beyond this do not fit in int64 milliseconds.
_MAX_SECONDS = 9e15


class _Entry(NamedTuple):
    """A series text seen before: its id, metric name, the family it was found in, and
    whether its samples are skipped there (``_created``)."""

    sid: int
    name: str
    family: str
    skip: bool


class _Family(NamedTuple):
    """A metric family met before: where it began, and its type once known."""

    line: int
    kind: str | None


class _Line(NamedTuple):
    """A sample line read in full."""

    name: str
    labels: Labels
    value: float
    stamp: str | int
    # Whether the line is ``<series text> <value> <timestamp>`` with nothing else, so that
    # later lines of that series may take the fast path.
    plain: bool


class TextReader:
    """Turns pieces of one file into sample columns; see the module docstring.

    ``resolve`` maps a label set (``__name__`` included) to a series id, and may raise
    :class:`ValueError` to refuse it; ``warn`` receives a line number and a message.
    """

    def __init__(
        self,
        text_format: TextFormat,
        resolve: Callable[[Labels], int],
        warn: Callable[[int, str], None],
    ) -> None:
        self.text_format: TextFormat = text_format
        self._resolve = resolve
        self._warn = warn
        self._openmetrics = text_format == "openmetrics"
        self._types = _OM_TYPES if self._openmetrics else _PROM_TYPES
        self._entries: dict[str, _Entry] = {}
        self._family = ""
        self._family_type: str | None = None
        self._suffixes = _PLAIN
        self._seen: dict[str, _Family] = {}
        self._warned: set[str] = set()
        self._eof_line = 0
        self.samples = 0

    @property
    def scattered_families(self) -> int:
        """Metric families that appeared in more than one place so far."""
        return len(self._warned)

    def feed(self, text: str, first_line: int) -> tuple[I32, I64, F64]:
        """The samples of ``text`` (whole lines, the first numbered ``first_line``)."""
        sids: list[int] = []
        values: list[str | float] = []
        stamps: list[str | int] = []
        add_sid, add_value, add_stamp = sids.append, values.append, stamps.append
        entries = self._entries
        if len(entries) > _KEYS_KEPT:
            entries.clear()
        known = entries.get
        last: _Entry | None = None
        family = self._family
        skip = False
        lines = text.split("\n")
        rest = iter(lines)
        # Line numbers are needed only off the fast path: the iterator knows how many
        # lines are left, so counting each one is spared.
        after_last = first_line + len(lines) - 1
        for line in rest:
            try:
                key, value, stamp = line.rsplit(" ", 2)
            except ValueError:
                key = value = stamp = ""
            entry = known(key)
            if entry is None:
                number = after_last - length_hint(rest)
                fields = (key, value, stamp)
                entry = self._slow_line(line, fields, number, sids, values, stamps)
                family = self._family
                if entry is None:
                    last = None
                    continue
                last = entry
                skip = entry.skip
            elif entry is not last:
                last = entry
                # A series keeps its family: only a change of family needs a closer look.
                if entry.family == family:
                    skip = entry.skip
                else:
                    skip = self._sample_family(entry.name, after_last - length_hint(rest))
                    family = self._family
            if not skip:
                add_sid(entry.sid)
                add_value(value)
                add_stamp(stamp)
        if not sids:
            return empty_columns()
        try:
            columns = (
                np.array(sids, dtype=np.int32),
                self._milliseconds(stamps),
                np.array(values, dtype=np.float64),
            )
        except (ValueError, OverflowError):
            raise self._bad_field(text, first_line) from None
        self.samples += len(sids)
        return columns

    def finish(self, last_line: int) -> None:
        """Checks at the end of the file: OpenMetrics ends with ``# EOF``."""
        if self._openmetrics and not self._eof_line:
            raise ExpositionError(last_line, "OpenMetrics text must end with a # EOF line")
        hidden = len(self._warned) - _WARNINGS_NAMED
        if hidden > 0:
            self._warn(
                last_line,
                f"{hidden} more metric families appear in more than one place; imported anyway",
            )

    # ------------------------------------------------------------------------------ lines

    def _milliseconds(self, stamps: list[str | int]) -> I64:
        # Lines share timestamps (every series is scraped at the same instants): convert
        # each distinct text once.
        distinct = list(dict.fromkeys(stamps))
        if self._openmetrics:
            seconds = np.array(distinct, dtype=np.float64)
            if not (np.abs(seconds) < _MAX_SECONDS).all():
                raise ValueError("timestamp out of range")
            # Round, not truncate: 1700000000.123 * 1000 is 1700000000122.9998 in floating
            # point.
            converted = np.rint(seconds * 1000).astype(np.int64)
        else:
            converted = np.array(distinct, dtype=np.int64)
        if len(distinct) == len(stamps):
            return converted
        table = dict(zip(distinct, converted.tolist(), strict=True))
        return np.fromiter(map(table.__getitem__, stamps), np.int64, len(stamps))

    def _bad_field(self, text: str, first_line: int) -> ExpositionError:
        """The error at the first line of ``text`` whose value or timestamp numpy refused."""
        for number, line in enumerate(text.split("\n"), first_line):
            parts = line.rsplit(" ", 2)
            if len(parts) != 3 or line[0] == "#" or parts[0] not in self._entries:
                continue  # not read on the fast path
            try:
                np.array([parts[1]], dtype=np.float64)
            except ValueError:
                return ExpositionError(number, f"invalid value {parts[1][:40]!r}")
            try:
                self._milliseconds([parts[2]])
            except (ValueError, OverflowError):
                return ExpositionError(number, self._stamp_error(parts[2]))
        last = first_line + text.count("\n")
        return ExpositionError(last, f"invalid value or timestamp in lines {first_line}-{last}")

    def _slow_line(
        self,
        line: str,
        fields: tuple[str, str, str],
        number: int,
        sids: list[int],
        values: list[str | float],
        stamps: list[str | int],
    ) -> _Entry | None:
        """A line that is not a sample of a series seen before: read it in full. Returns the
        entry to remember for a series text seen for the first time on a plain line, after
        which the line takes the fast path; appends the sample of any other line itself."""
        if not line or line.isspace():
            return None
        if line[0] == "#":
            self._comment(line, number)
            return None
        key = fields[0]
        series = self._plain_series(*fields) if key else None
        if series is not None:
            return self._remember(key, *series, number)
        sample = self._read_line(line, number)
        if sample.plain:
            return self._remember(key, sample.name, sample.labels, number)
        sid = self._series(sample.name, sample.labels, number)
        if not self._sample_family(sample.name, number):
            sids.append(sid)
            values.append(sample.value)
            stamps.append(sample.stamp)
        return None

    def _remember(self, key: str, name: str, labels: Labels, number: int) -> _Entry:
        sid = self._series(name, labels, number)
        skip = self._sample_family(name, number)
        entry = self._entries[key] = _Entry(sid, name, self._family, skip)
        return entry

    def _plain_series(self, key: str, value: str, stamp: str) -> tuple[str, Labels] | None:
        """Name and labels of a new series on a plain line, read straight from its fields;
        None for any other line, which the general reader then reads (or refuses)."""
        brace = key.find("{")
        name = key if brace < 0 else key[:brace]
        if _NAME.fullmatch(name) is None or (brace >= 0 and key[-1] != "}"):
            return None
        try:
            labels = parse_labels(key[brace + 1 : -1]) if brace >= 0 else ()
            parse_value(value)
            self._stamp(stamp)
        except ValueError:  # ExpositionError too
            return None
        return name, labels

    def _series(self, name: str, labels: Labels, number: int) -> int:
        full = tuple(sorted(((METRIC_NAME, name), *labels)))
        try:
            return self._resolve(full)
        except ValueError as e:
            raise ExpositionError(number, str(e)) from None

    def _read_line(self, line: str, number: int) -> _Line:
        """A sample line in any layout the formats allow; raises at anything else."""
        text = line.strip()
        m = _NAME.match(text)
        if m is None:
            raise ExpositionError(number, f"not a sample: {text[:120]!r}")
        name = m.group(0)
        at = m.end()
        labels: Labels = ()
        brace = len(text) - len(text[at:].lstrip())
        if text.startswith("{", brace):
            labels, at = _labels_at(text, brace, number)
        rest = text[at:]
        exemplar = self._openmetrics and " # " in rest
        fields = rest.split(" # ", 1)[0].split() if exemplar else rest.split()
        if not fields or not rest[0].isspace():
            raise ExpositionError(number, f"not a sample: {text[:120]!r}")
        if len(fields) == 1:
            raise ExpositionError(number, f"sample {name} has no timestamp")
        if len(fields) > 2:
            raise ExpositionError(number, f"unexpected text after the timestamp: {text[:120]!r}")
        try:
            value = parse_value(fields[0])
        except ValueError:
            raise ExpositionError(number, f"invalid value {fields[0][:40]!r}") from None
        try:
            stamp = self._stamp(fields[1])
        except ValueError:
            raise ExpositionError(number, self._stamp_error(fields[1])) from None
        # numpy reads "12\r" as 12: files with Windows line ends stay on the fast path.
        plain = not exemplar and text == line.rstrip("\r") and rest == f" {fields[0]} {fields[1]}"
        return _Line(name, labels, value, stamp, plain)

    def _stamp(self, text: str) -> str | int:
        if not self._openmetrics:
            return parse_timestamp(text)
        seconds = float(text)
        if "_" in text or not abs(seconds) < _MAX_SECONDS:
            raise ValueError(text)
        return text

    def _stamp_error(self, text: str) -> str:
        hint = ""
        if not self._openmetrics and "." in text:
            hint = (
                "; the Prometheus text format takes integer milliseconds (an OpenMetrics "
                "file, with seconds, ends with # EOF)"
            )
        return f"invalid timestamp {text[:40]!r}{hint}"

    # ---------------------------------------------------------------------------- families

    def _sample_family(self, name: str, number: int) -> bool:
        """Note the family of a sample named ``name``; whether to skip such samples."""
        if self._eof_line:
            raise ExpositionError(number, f"sample after # EOF (line {self._eof_line})")
        family = self._family
        if family and name.startswith(family):
            suffix = name[len(family) :]
            if suffix in self._suffixes:
                return suffix == "_created" and self._family_type in _CREATED_IGNORED
        # Another family: one met before (perhaps with its TYPE), or a new one.
        for suffix in _ALL_SUFFIXES:
            if name.endswith(suffix):
                known = self._seen.get(name[: -len(suffix)])
                if known is not None and suffix in _SUFFIXES.get(known.kind, _PLAIN):
                    self._enter_family(name[: -len(suffix)], number, known.kind)
                    return suffix == "_created" and known.kind in _CREATED_IGNORED
        known = self._seen.get(name)
        self._enter_family(name, number, None if known is None else known.kind)
        return False

    def _enter_family(self, name: str, number: int, kind: str | None) -> None:
        known = self._seen.get(name)
        if known is None:
            self._seen[name] = _Family(number, kind)
        elif name not in self._warned:
            self._warned.add(name)
            if len(self._warned) <= _WARNINGS_NAMED:
                self._warn(
                    number,
                    f"metric family {name} continues here after other families (it began at "
                    f"line {known.line}); imported anyway, as promtool does",
                )
        self._family = name
        self._set_type(kind)

    def _set_type(self, kind: str | None) -> None:
        self._family_type = kind
        self._suffixes = _SUFFIXES.get(kind, _PLAIN)
        if kind is not None:
            self._seen[self._family] = self._seen[self._family]._replace(kind=kind)

    def _comment(self, text: str, number: int) -> None:
        parts = text[1:].split(None, 3)
        if not parts:
            return
        keyword = parts[0]
        if keyword == "EOF" and len(parts) == 1 and self._openmetrics:
            self._eof_line = self._eof_line or number
            self._family = ""  # so that the next sample is looked at, and refused
            return
        if keyword not in ("TYPE", "HELP", "UNIT") or len(parts) < 2:
            return  # a plain comment
        if self._eof_line:
            raise ExpositionError(number, f"metadata after # EOF (line {self._eof_line})")
        name = parts[1]
        if _NAME.fullmatch(name) is None:
            raise ExpositionError(number, f"invalid metric name in {text[:120]!r}")
        if keyword == "TYPE":
            if len(parts) != 3 or parts[2] not in self._types:
                raise ExpositionError(number, f"invalid TYPE line: {text[:120]!r}")
            if name == self._family:  # after its HELP line
                self._set_type(parts[2])
            else:
                self._enter_family(name, number, parts[2])
        elif name != self._family:
            self._enter_family(name, number, None)


def _labels_at(text: str, at: int, number: int) -> tuple[Labels, int]:
    """The label set opening at ``text[at] == "{"``, and the position after its ``}``."""
    start = pos = at + 1
    while (m := _LABEL.match(text, pos)) is not None:
        pos = m.end()
        if not text.startswith(",", pos):
            break
        pos += 1
    pos = len(text) - len(text[pos:].lstrip())
    if not text.startswith("}", pos):
        raise ExpositionError(number, f"invalid label set in {text[:120]!r}")
    try:
        labels = parse_labels(text[start:pos])
    except ExpositionError as e:
        raise ExpositionError(number, e.reason) from None
    return labels, pos + 1
