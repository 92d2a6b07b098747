"""Label selectors in the query-string syntax of the Kubernetes API (``labelSelector=``).

``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a`` (exists) and ``!a``,
joined by commas: every term must hold. A term that does not parse is a
:class:`SelectorError` naming it, which the API answers 400 BadRequest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Selector", "SelectorError", "parse_selector"]

# Label keys: an optional DNS prefix and a name; values: up to 63 of [A-Za-z0-9_.-].
_KEY = r"(?:[A-Za-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?)?"
_EQUALITY = re.compile(rf"^({_KEY})\s*(==|!=|=)\s*({_VALUE})$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")
_VALUE_ONLY = re.compile(rf"^{_VALUE}$")


class SelectorError(ValueError):
    """A label selector that does not parse; the message names the term."""


@dataclass(frozen=True)
class _Term:
    key: str
    op: str  # in | notin | exists | absent
    values: frozenset[str] = frozenset()

    def holds(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "absent":
            return self.key not in labels
        if self.op == "in":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values


@dataclass(frozen=True)
class Selector:
    """Terms that must all hold; no term selects everything."""

    terms: tuple[_Term, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every term."""
        return all(t.holds(labels) for t in self.terms)


def _split(text: str) -> list[str]:
    """Terms separated by the commas outside parentheses."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t.strip() for t in terms]


def parse_selector(text: str | None) -> Selector:
    """The selector of ``text`` (None or empty: everything)."""
    if not text or not text.strip():
        return Selector()
    terms = []
    for raw in _split(text):
        if match := _EQUALITY.match(raw):
            key, op, value = match.group(1), match.group(3), match.group(4)
            terms.append(_Term(key, "notin" if op == "!=" else "in", frozenset([value])))
        elif match := _SET.match(raw):
            values = [v.strip() for v in match.group(4).split(",")]
            if not all(_VALUE_ONLY.match(v) for v in values) or values == [""]:
                raise SelectorError(f"unable to parse requirement: {raw!r}: invalid values")
            terms.append(_Term(match.group(1), match.group(3), frozenset(values)))
        elif match := _EXISTS.match(raw):
            terms.append(_Term(match.group(2), "absent" if match.group(1) else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {raw!r}")
    return Selector(tuple(terms))
