"""Alertmanager's matcher syntax: ``severity=~"warning|critical"``, ``{a="1", b!=2}``.

Parsing follows Alertmanager 0.25's ``labels.ParseMatchers`` (unquoted values, escapes,
braces and commas). Every matcher of silences, routes and inhibition rules is an
:class:`AlertMatcher`: its regular expression is compiled by RE2 as Alertmanager's Go code
compiles it (``^(?:...)$``, ``.`` not matching a newline; :mod:`tsdb.go_regex`), so matching
takes linear time and a pattern Alertmanager rejects (``(a)\\1``, ``(?=x)``) is rejected here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from tsdb.labels import Matcher, MatchType

_MATCHER = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$", re.DOTALL)
_TYPE_ORDER = {
    MatchType.EQUAL: 0,
    MatchType.NOT_EQUAL: 1,
    MatchType.REGEX: 2,
    MatchType.NOT_REGEX: 3,
}


@dataclass(frozen=True)
class AlertMatcher(Matcher):
    """A matcher with Alertmanager's regular expressions: ``.`` does not match a newline."""

    DOT_NL: ClassVar[bool] = False


Matchers = tuple[Matcher, ...]


class MatcherError(ValueError):
    """Text that is not a matcher."""


def _split(text: str) -> list[str]:
    text = text.strip()
    text = text.removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    token: list[str] = []
    inside = escaped = False
    for ch in text:
        if ch == "," and not inside:
            tokens.append("".join(token))
            token = []
            continue
        if ch == '"':
            if not escaped:
                inside = not inside
            else:
                escaped = False
        elif ch == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(ch)
    last = "".join(token).strip()
    if last:
        tokens.append(last)
    return tokens


def parse_matcher(text: str) -> Matcher:
    """One matcher such as ``job=~"api|web"`` or ``severity = page``."""
    m = _MATCHER.match(text)
    if m is None:
        raise MatcherError(f"bad matcher format: {text}")
    raw = m.group(3)
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(ch, "\\" + ch))
            continue
        if ch == "\\":
            if i < len(raw) - 1:
                escaped = True
                continue
            out.append("\\")
        elif ch == '"':
            if not quoted or i < len(raw) - 1:
                raise MatcherError(f"matcher value contains unescaped double quote: {m.group(3)}")
            quoted = False
        else:
            out.append(ch)
    if quoted:
        raise MatcherError(f"matcher value contains unescaped double quote: {m.group(3)}")
    try:
        return AlertMatcher(MatchType(m.group(2)), m.group(1), "".join(out))
    except ValueError as e:
        raise MatcherError(str(e)) from e


def parse_matchers(text: str) -> list[Matcher]:
    """Every matcher of ``text`` (comma-separated, optionally in braces)."""
    return [parse_matcher(t) for t in _split(text)]


def parse_all(texts: Sequence[str]) -> Matchers:
    """The matchers of a settings list (each item may hold several)."""
    return tuple(m for t in texts for m in parse_matchers(t))


def matches(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher accepts the labels (an absent label is the empty string)."""
    return all(m.matches(labels.get(m.name, "")) for m in matchers)


def sort_key(m: Matcher) -> tuple[str, str, int]:
    """Alertmanager's order of matchers (name, value, type)."""
    return (m.name, m.value, _TYPE_ORDER[m.type])


def format_matchers(matchers: Sequence[Matcher]) -> str:
    """``{a="1",b=~"x"}`` as Alertmanager prints a route's matchers."""
    return "{" + ",".join(str(m) for m in sorted(matchers, key=sort_key)) + "}"


def to_api(m: Matcher) -> dict[str, Any]:
    """A matcher as Alertmanager's API v2 spells it."""
    return {
        "name": m.name,
        "value": m.value,
        "isRegex": m.type in (MatchType.REGEX, MatchType.NOT_REGEX),
        "isEqual": m.type in (MatchType.EQUAL, MatchType.REGEX),
    }


def from_api(d: Mapping[str, Any]) -> Matcher:
    """A matcher from Alertmanager's API v2 JSON (``isEqual`` defaults to true)."""
    try:
        name, value = str(d["name"]), str(d["value"])
    except KeyError as e:
        raise MatcherError(f"matcher without {e.args[0]!r}") from e
    regex, equal = bool(d.get("isRegex", False)), bool(d.get("isEqual", True))
    op = {
        (False, True): MatchType.EQUAL,
        (False, False): MatchType.NOT_EQUAL,
        (True, True): MatchType.REGEX,
        (True, False): MatchType.NOT_REGEX,
    }[(regex, equal)]
    if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name):
        raise MatcherError(f"invalid label name {name!r}")
    try:
        return AlertMatcher(op, name, value)
    except ValueError as e:
        raise MatcherError(str(e)) from e
