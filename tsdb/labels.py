"""Label sets and label matchers, with Prometheus semantics.

A series is identified by its labels, the metric name included as ``__name__``. Label sets
are tuples of ``(name, value)`` pairs sorted by name, so they hash and compare cheaply.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from tsdb.go_regex import GoRegex, compile_matcher

Labels = tuple[tuple[str, str], ...]

METRIC_NAME = "__name__"
_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class InvalidLabels(ValueError):
    """A label set that Prometheus would not accept."""


def make_labels(labels: Mapping[str, str] | Iterable[tuple[str, str]]) -> Labels:
    """A canonical label set: sorted by name, empty values dropped (as Prometheus does)."""
    pairs = labels.items() if isinstance(labels, Mapping) else labels
    return tuple(sorted((k, v) for k, v in pairs if v != ""))


def validate_labels(labels: Labels) -> None:
    """Raise :class:`InvalidLabels` naming the offending label."""
    names = [k for k, _ in labels]
    if len(set(names)) != len(names):
        raise InvalidLabels(f"duplicate label name in {format_labels(labels)}")
    for k, v in labels:
        if k == METRIC_NAME:
            if not _NAME_RE.match(v):
                raise InvalidLabels(f"invalid metric name {v!r}")
        elif not _LABEL_RE.match(k):
            raise InvalidLabels(f"invalid label name {k!r}")
    if METRIC_NAME not in names:
        raise InvalidLabels(f"series {format_labels(labels)} has no metric name")


def metric_name(labels: Labels) -> str:
    """The ``__name__`` of a label set, or ``""``."""
    for k, v in labels:
        if k == METRIC_NAME:
            return v
    return ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_labels(labels: Labels) -> str:
    """``name{a="1",b="2"}`` as Prometheus prints series."""
    name = metric_name(labels)
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels if k != METRIC_NAME)
    if not inner:
        return name or "{}"
    return f"{name}{{{inner}}}"


class MatchType(enum.Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True)
class Matcher:
    """One label matcher. Regular expressions are RE2's, anchored at both ends like
    Prometheus' (``^(?s:...)$``: ``.`` matches a newline); see :mod:`tsdb.go_regex`."""

    # Alertmanager's matchers (alerts) set it False: `.` does not match a newline there.
    DOT_NL: ClassVar[bool] = True

    type: MatchType
    name: str
    value: str
    _regex: GoRegex | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type in (MatchType.REGEX, MatchType.NOT_REGEX):
            # RegexError is a ValueError naming the pattern and what Go says of it.
            object.__setattr__(self, "_regex", compile_matcher(self.value, dot_nl=self.DOT_NL))

    @classmethod
    def parse(cls, name: str, op: str, value: str) -> Matcher:
        """A matcher from its parts, e.g. ``Matcher.parse("job", "=~", "api|web")``."""
        return cls(MatchType(op), name, value)

    def matches(self, value: str) -> bool:
        """Whether a label value (``""`` when the label is absent) matches."""
        if self.type is MatchType.EQUAL:
            return value == self.value
        if self.type is MatchType.NOT_EQUAL:
            return value != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(value)
        return hit if self.type is MatchType.REGEX else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.type.value}"{_escape(self.value)}"'


def eq(name: str, value: str) -> Matcher:
    """Shorthand for an equality matcher."""
    return Matcher(MatchType.EQUAL, name, value)


def name_is(metric: str) -> Matcher:
    """Shorthand for ``__name__="metric"``."""
    return eq(METRIC_NAME, metric)
