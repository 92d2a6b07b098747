"""A runner for Prometheus' promqltest files (``load``, ``clear``, ``eval``, ``expect``).

Each ``eval`` is one case: passed, failed (with what was expected and what came back), or
skipped when it loads or expects native histograms, which the store does not hold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import promql_parser

from promql.engine import Engine
from promql.errors import PromQLError
from promql.forecast import SeriesForecaster
from promql.parse import parse
from promql.results import QueryResult
from promql.series_notation import (
    NotationError,
    parse_points,
    parse_series,
)
from promql.settings import PromQLSettings
from promql.values import format_series
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings, stale_mask
from tsdb.labels import METRIC_NAME, Labels, Matcher, format_labels
from tsdb.selector import matchers_of

_INSTANT = re.compile(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+at\s+(\S+)\s+(.+)$")
_RANGE = re.compile(
    r"^eval(?:_(fail|warn|ordered|info))?\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)"
    r"\s+(.+)$"
)
_EXPECT = re.compile(r"^expect\s+(fail|warn|info|no_warn|no_info|ordered)(?:\s+(msg|regex):(.*))?$")
_EXPECT_RANGE = re.compile(r"^expect\s+range\s+vector\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)$")
_EXPECT_STRING = re.compile(r"^expect\s+string\s+(.*)$")
_POSITION = re.compile(r"\s\(\d+:\d+\)$")
_EPSILON = 1e-6
_MIN_NORMAL = 2.2250738585072014e-308


class ScriptError(ValueError):
    """A test file that does not follow the format; names the file and line."""


@dataclass
class Failure:
    """A case that did not pass."""

    line: int
    query: str
    message: str


@dataclass
class FileReport:
    """Outcome of one file."""

    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)


@dataclass
class _Case:
    line: int
    query: str
    at: int = 0
    start: int = 0
    end: int = 0
    step: int = 0
    is_range: bool = False
    expects: list[tuple[str, str | None, str]] = field(default_factory=list)
    expected: list[tuple[Labels | None, list[float | None]]] = field(default_factory=list)
    range_vector: tuple[int, int, int] | None = None
    string: str | None = None
    histograms: bool = False


def parse_time(text: str) -> int:
    """A time or duration of the test format (``50m``, ``1h30m``, ``0``, ``10.5``) in ms."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ScriptError(f"invalid time {text!r}: not a finite number")
        return round(seconds * 1000)
    negative = text.startswith("-")
    if re.fullmatch(r"-?(?:0+[a-z]+)+", text):
        return 0
    try:
        delta = promql_parser.parse_duration(text.lstrip("-"))
    except ValueError as e:
        raise ScriptError(f"invalid time {text!r}: {e}") from e
    ms = round(delta.total_seconds() * 1000)
    return -ms if negative else ms


def _almost_equal(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    total = abs(a) + abs(b)
    if a == 0 or b == 0 or total < _MIN_NORMAL:
        return diff < _EPSILON * _MIN_NORMAL
    return diff / min(total, 1.7976931348623157e308) < _EPSILON


class _Fixture:
    """The store a file loads into, and which series held native histograms."""

    def __init__(self) -> None:
        self.store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
        self.histogram_series: list[Labels] = []

    def clear(self) -> None:
        self.store.close()
        self.__init__()  # type: ignore[misc]

    def load(self, interval_ms: int, lines: list[str], with_nhcb: bool) -> None:
        for text in lines:
            labels, rest = parse_series(text)
            points = parse_points(rest)
            if points.histograms:
                self.histogram_series.append(labels)
            if with_nhcb:
                self._note_nhcb(labels)
            stamps = []
            values = []
            for k, v in enumerate(points.values):
                if v is None or (
                    points.histograms and math.isnan(v) and not stale_mask(np.array([v]))[0]
                ):
                    continue
                stamps.append(k * interval_ms)
                values.append(v)
            if not stamps:
                continue
            ref = self.store.ref(labels)
            self.store.append_batch(
                np.full(len(stamps), ref, dtype=np.int32),
                np.array(stamps, dtype=np.int64),
                np.array(values, dtype=np.float64),
            )

    def _note_nhcb(self, labels: Labels) -> None:
        name = dict(labels).get(METRIC_NAME, "")
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix):
                base = name[: -len(suffix)]
                rest = tuple(p for p in labels if p[0] not in (METRIC_NAME, "le"))
                self.histogram_series.append(tuple(sorted([*rest, (METRIC_NAME, base)])))

    def touches_histograms(self, query: str) -> bool:
        if not self.histogram_series:
            return False
        try:
            expr = parse(query)
        except PromQLError:
            # Syntax promql-parser lacks (e.g. histogram trimming operators): judge by the
            # names the text mentions.
            names = {dict(lb).get(METRIC_NAME, "") for lb in self.histogram_series}
            return any(word in names for word in re.findall(r"[a-zA-Z_:][\w:]*", query))
        selectors: list[list[Matcher]] = []

        def visit(node: Any) -> bool:
            if isinstance(node, promql_parser.VectorSelector):
                selectors.append(matchers_of(node))
            return True

        promql_parser.walk(expr, visit)
        return any(
            all(m.matches(dict(lb).get(m.name, "")) for m in ms)
            for ms in selectors
            for lb in self.histogram_series
        )


def _blocks(text: str) -> Iterator[tuple[int, list[tuple[int, str]]]]:
    """Commands with their indented lines; a blank line ends a command."""
    block: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue
        if not stripped:
            if block:
                yield block[0][0], block
                block = []
            continue
        if block and not raw[:1].isspace() and _is_command(stripped):
            yield block[0][0], block
            block = []
        block.append((number, stripped))
    if block:
        yield block[0][0], block


def _is_command(line: str) -> bool:
    return line.startswith(("load", "clear", "eval"))


def _parse_case(number: int, lines: list[tuple[int, str]]) -> _Case:
    head = lines[0][1]
    m = _INSTANT.match(head)
    if m:
        variant, at, query = m.groups()
        case = _Case(number, query.strip(), at=parse_time(at))
    else:
        r = _RANGE.match(head)
        if not r:
            raise ScriptError(f"line {number}: cannot read {head!r}")
        variant, start, end, step, query = r.groups()
        case = _Case(
            number,
            query.strip(),
            start=parse_time(start),
            end=parse_time(end),
            step=parse_time(step),
            is_range=True,
        )
    if variant:
        case.expects.append((variant, None, ""))
    for line_no, line in lines[1:]:
        if line.startswith(("expected_fail_message", "expected_fail_regexp")):
            directive, *message = line.split(None, 1)
            if not message:
                raise ScriptError(f"line {line_no}: {directive} without a message")
            case.expects.append(("fail", "msg" if "message" in directive else "regex", message[0]))
            continue
        em = _EXPECT_RANGE.match(line)
        if em:
            case.range_vector = (parse_time(em[1]), parse_time(em[2]), parse_time(em[3]))
            continue
        es = _EXPECT_STRING.match(line)
        if es:
            case.string = es[1].strip()[1:-1]
            continue
        ex = _EXPECT.match(line)
        if ex:
            case.expects.append((ex[1], ex[2], (ex[3] or "").strip()))
            continue
        if "{{" in line:
            case.histograms = True
            continue
        try:
            if line[0].isdigit() or (line[0] in "+-.Nn" and not line.startswith("nan{")):
                try:
                    case.expected.append((None, parse_points(line).values))
                    continue
                except ValueError:
                    pass
            labels, rest = parse_series(line)
            case.expected.append((labels, parse_points(rest).values))
        except (NotationError, ValueError) as e:
            raise ScriptError(f"line {line_no}: {e}") from e
    return case


def _matches(kind: str, text: str, message: str) -> bool:
    # Prometheus ends an annotation with its position in the query only when it knows the
    # query; test files of either kind match.
    candidates = (message, _POSITION.sub("", message))
    if kind == "msg":
        return any(c.strip() == text.strip() for c in candidates)
    return any(re.search(text, c) is not None for c in candidates)


def _check_annotations(case: _Case, result: QueryResult) -> str | None:
    for level, got in (("warn", result.annotations.warnings), ("info", result.annotations.infos)):
        wanted = [(k, t) for e, k, t in case.expects if e == level]
        if any(e == f"no_{level}" for e, _, _ in case.expects) and got:
            return f"expected no {level} annotation, got {got}"
        if not wanted:
            continue
        if not got:
            return f"expected a {level} annotation, got none"
        for kind, text in wanted:
            if kind and not any(_matches(kind, text, g) for g in got):
                return f"expected {level} {kind} {text!r}, got {got}"
        if all(kind for kind, _ in wanted):
            for g in got:
                if not any(_matches(kind or "", text, g) for kind, text in wanted):
                    return f"unexpected {level} annotation {g!r}"
    return None


def _compare(case: _Case, result: QueryResult) -> str | None:
    if case.string is not None:
        if result.type != "string" or result.string != case.string:
            return f"expected string {case.string!r}, got {result.type} {result.string!r}"
        return None
    if result.type == "scalar":
        if len(case.expected) != 1 or case.expected[0][0] not in (None, ()):
            return f"expected {len(case.expected)} series, got scalar {result.scalar}"
        want = case.expected[0][1]
        if len(want) != 1 or want[0] is None or not _almost_equal(want[0], result.scalar):
            return f"expected {want}, got scalar {result.scalar}"
        return None
    got: dict[Labels, list[tuple[int, float]]] = {}
    order: list[Labels] = []
    for s in result.series:
        if s.labels in got:
            return f"duplicate series {format_labels(s.labels)} in result"
        got[s.labels] = list(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
        order.append(s.labels)
    wanted: dict[Labels, list[tuple[int, float]]] = {}
    for labels, values in case.expected:
        key = labels if labels is not None else ()
        times = _expected_times(case, len(values))
        wanted[key] = [(t, v) for t, v in zip(times, values, strict=False) if v is not None]
    if set(got) != set(wanted):
        missing = [format_labels(k) for k in wanted if k not in got]
        extra = [f"{format_labels(k)} {[v for _, v in got[k]]}" for k in got if k not in wanted]
        return f"series differ: missing {missing}, unexpected {extra}"
    for key, points in wanted.items():
        have = got[key]
        if not case.is_range and case.range_vector is None and result.type == "vector":
            have_values = [v for _, v in have]
            want_values = [v for _, v in points]
            if len(have_values) != len(want_values) or not all(
                _almost_equal(a, b) for a, b in zip(want_values, have_values, strict=True)
            ):
                return f"{format_labels(key)}: expected {want_values}, got {have_values}"
            continue
        if len(have) != len(points) or not all(
            ta == tb and _almost_equal(va, vb)
            for (ta, va), (tb, vb) in zip(points, have, strict=True)
        ):
            return f"{format_labels(key)}: expected {points}, got {have}"
    if any(e == "ordered" for e, _, _ in case.expects):
        expected_order = [lb if lb is not None else () for lb, _ in case.expected]
        if order != expected_order:
            return f"expected order {[format_series(o) for o in expected_order]}, got " + str(
                [format_series(o) for o in order]
            )
    return None


def _expected_times(case: _Case, count: int) -> list[int]:
    if case.is_range:
        return [case.start + k * case.step for k in range(count)]
    if case.range_vector is not None:
        start, _, step = case.range_vector
        return [start + k * step for k in range(count)]
    return [case.at] * count


def _run_case(
    case: _Case,
    fixture: _Fixture,
    settings: PromQLSettings,
    forecaster: SeriesForecaster | None,
) -> str | None:
    engine = Engine(fixture.store, settings, forecaster)
    fails = [(k, t) for e, k, t in case.expects if e == "fail"]
    try:
        if case.is_range:
            result = engine.range(case.query, case.start, case.end, case.step)
        else:
            result = engine.instant(case.query, case.at)
    except PromQLError as e:
        if not fails:
            return f"unexpected error: {e}"
        for kind, text in fails:
            if kind and not _matches(kind, text, _bare_message(str(e))):
                return f"expected error {kind} {text!r}, got {_bare_message(str(e))!r}"
        return None
    if fails:
        return "expected an error, got none"
    problem = _check_annotations(case, result)
    if problem:
        return problem
    return _compare(case, result)


def _bare_message(message: str) -> str:
    """An error's message without the query our errors prefix it with."""
    m = re.match(r"^(?:parse error in|cannot evaluate) '.*?': (.*)$", message, re.DOTALL)
    return m.group(1) if m else message


def run_text(
    text: str,
    name: str,
    settings: PromQLSettings | None = None,
    forecaster: SeriesForecaster | None = None,
) -> FileReport:
    """Run a test file's text; ``name`` labels the report.

    A command that cannot be read fails (with its line) and the file goes on; the cases
    after a load that failed fail too, until the next ``load`` or ``clear``.
    """
    settings = settings or PromQLSettings()
    report = FileReport(name)
    fixture = _Fixture()
    broken_load: int | None = None

    def fail(number: int, query: str, problem: str) -> None:
        report.failed += 1
        report.failures.append(Failure(number, query, problem))

    try:
        for number, lines in _blocks(text):
            head = lines[0][1]
            if head == "clear":
                fixture.clear()
                broken_load = None
                continue
            if head.startswith("load"):
                parts = head.split()
                broken_load = None
                try:
                    if len(parts) != 2:
                        raise ScriptError(f"expected 'load <interval>', got {head!r}")
                    fixture.load(
                        parse_time(parts[1]), [t for _, t in lines[1:]], parts[0] != "load"
                    )
                except (ValueError, PromQLError) as e:
                    broken_load = number
                    fail(number, head, f"cannot load: {e}")
                continue
            if not head.startswith("eval"):
                fail(number, head, "unknown command")
                continue
            try:
                case = _parse_case(number, lines)
            except ScriptError as e:
                fail(number, head, str(e))
                continue
            if case.histograms or fixture.touches_histograms(case.query):
                report.skipped += 1
                continue
            if broken_load is not None:
                fail(number, case.query, f"not run: the load at line {broken_load} failed")
                continue
            try:
                problem = _run_case(case, fixture, settings, forecaster)
            except Exception as e:  # a bug in the evaluator must not stop the file
                problem = f"crash: {type(e).__name__}: {e}"
            if problem is None:
                report.passed += 1
            else:
                fail(number, case.query, problem)
    finally:
        fixture.store.close()
    return report


def run_file(
    path: Path,
    settings: PromQLSettings | None = None,
    forecaster: SeriesForecaster | None = None,
) -> FileReport:
    """Run one promqltest file; ``forecaster`` is the model behind ``forecast()``."""
    return run_text(path.read_text(encoding="utf-8"), str(path), settings, forecaster)


__all__ = ["Failure", "FileReport", "ScriptError", "run_file", "run_text"]
