"""The series notation of promqltest and ``promtool test rules`` files.

``metric{a="b"} 1+2x3 _ stale 5x2`` is a label set followed by points: ``a+bxn`` expands
to ``n + 1`` values from ``a`` in steps of ``b``, ``axn`` repeats ``a``, ``_`` is a missing
point (``_xn`` several), ``stale`` a staleness marker. ``{{...}}`` native histograms are
recognised so that callers can skip them, never loaded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from tsdb import STALE_NAN
from tsdb.labels import METRIC_NAME, Labels, make_labels

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_HISTOGRAM = re.compile(r"\{\{.*?\}\}(?:[+-]\{\{.*?\}\})?(?:x\d+)?")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r", "`": "`"}


class NotationError(ValueError):
    """Text that is not valid series notation."""


@dataclass(frozen=True)
class Points:
    """Expanded points: a value, ``None`` for a missing point."""

    values: list[float | None]
    histograms: bool


def _read_string(text: str, at: int) -> tuple[str, int]:
    if text[at : at + 1] not in ('"', "'", "`"):
        raise NotationError(f"expected a quoted string at {text[at:]!r}")
    quote = text[at]
    out: list[str] = []
    i = at + 1
    while i < len(text):
        c = text[i]
        if c == quote:
            return "".join(out), i + 1
        if c == "\\" and quote != "`" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt in "xuU":
                width = {"x": 2, "u": 4, "U": 8}[nxt]
                out.append(chr(int(text[i + 2 : i + 2 + width], 16)))
                i += 2 + width
                continue
            out.append(nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    raise NotationError(f"unterminated string in {text!r}")


def parse_series(text: str) -> tuple[Labels, str]:
    """The label set at the start of ``text`` and the text after it."""
    text = text.strip()
    pairs: list[tuple[str, str]] = []
    i = 0
    m = _NAME.match(text)
    if m:
        pairs.append((METRIC_NAME, m.group()))
        i = m.end()
    if i < len(text) and text[i] == "{":
        i += 1
        while True:
            while i < len(text) and text[i] in " \t,":
                i += 1
            if i >= len(text):
                raise NotationError(f"unterminated label set in {text!r}")
            if text[i] == "}":
                i += 1
                break
            if text[i] in "\"'`":
                name, i = _read_string(text, i)
            else:
                nm = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(text, i)
                if not nm:
                    raise NotationError(f"bad label name at {text[i:]!r}")
                name, i = nm.group(), nm.end()
            while i < len(text) and text[i] == " ":
                i += 1
            if i < len(text) and text[i] in ",}":
                pairs.append((METRIC_NAME, name))  # a quoted metric name
                continue
            if i >= len(text) or text[i] != "=":
                raise NotationError(f"expected '=' at {text[i:]!r}")
            i += 1
            while i < len(text) and text[i] == " ":
                i += 1
            value, i = _read_string(text, i)
            pairs.append((name, value))
    if not pairs and not text.startswith("{"):
        raise NotationError(f"no series in {text!r}")
    return make_labels(pairs), text[i:].strip()


def parse_number(text: str) -> float:
    """A float as Go's ParseFloat reads it (``Inf``, ``NaN``, hex integers...)."""
    lowered = text.lower()
    if lowered in ("inf", "+inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    if lowered in ("nan", "+nan", "-nan"):
        return math.nan
    # Go reads a number with ParseInt(s, 0, 64) first (a leading 0 is octal), and its lexer
    # takes no digit separators.
    if re.fullmatch(r"[-+]?0[0-7]+", text):
        return float(int(text, 8))
    if "_" in text:
        raise ValueError(f"bad number syntax: {text!r}")
    return float(text)


def _split_step(body: str) -> tuple[str, str, str] | None:
    for i in range(1, len(body)):
        if body[i] in "+-" and body[i - 1] not in "eE":
            return body[:i], body[i], body[i + 1 :]
    return None


def parse_points(text: str) -> Points:
    """Expand the points notation."""
    values: list[float | None] = []
    histograms = False
    tokens = []
    rest = text.strip()
    while rest:
        m = _HISTOGRAM.match(rest)
        if m:
            tokens.append(m.group())
            rest = rest[m.end() :].lstrip()
            continue
        token, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        tokens.append(token.strip())
    for token in filter(None, tokens):
        if token.startswith("{{"):
            histograms = True
            count = 1
            tail = re.search(r"\}\}x(\d+)$", token)
            if tail:
                count = int(tail.group(1)) + 1
            values.extend([math.nan] * count)
            continue
        times = None
        body = token
        if "x" in token:
            body, _, n = token.rpartition("x")
            times = int(n)
        if body == "_":
            values.extend([None] * (times if times is not None else 1))
            continue
        if body == "stale":
            values.extend([STALE_NAN] * (times + 1 if times is not None else 1))
            continue
        if times is None:
            values.append(parse_number(body))
            continue
        step = _split_step(body)
        if step is None:
            values.extend([parse_number(body)] * (times + 1))
            continue
        start, sign, delta = parse_number(step[0]), step[1], parse_number(step[2])
        delta = delta if sign == "+" else -delta
        # Repeated addition, not multiplication: the expected values in test files were
        # generated this way and differ in the last bits.
        value = start
        for _ in range(times + 1):
            values.append(value)
            value += delta
    return Points(values, histograms)
