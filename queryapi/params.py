"""Request parameters as Prometheus' API reads them: times, durations, matchers, limits.

Times are unix seconds (fractions rounded to the millisecond) or RFC 3339; durations are
seconds or Prometheus durations (``1h30m``). Messages are Prometheus' own, so that a client
shows the same error from foresight as from Prometheus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from queryapi.errors import ApiError, invalid_parameter
from tsdb.labels import Matcher
from tsdb.selector import SelectorError, parse_selector

# Prometheus' bounds for an absent start or end, and how it spells them (clients send these).
MIN_TIME_MS = -9_223_309_901_257_974_000
MAX_TIME_MS = 9_223_309_901_257_974_999
_MIN_TIME_TEXT = "-292273086-05-16T16:47:06Z"
_MAX_TIME_TEXT = "292277025-08-18T07:12:54.999999999Z"

_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")
_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?"
)
_DURATION_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_EMPTY_MATCHERS = "at least one non-empty matcher"
_EMPTY_MESSAGE = "match[] must contain at least one non-empty matcher"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_DURATION_MS = (2**63 - 1) // 1_000_000


def _round_half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def parse_time(text: str) -> int:
    """Milliseconds of a unix time in seconds or an RFC 3339 time; :class:`ValueError` with
    Prometheus' message otherwise."""
    if _FLOAT.fullmatch(text):
        seconds = float(text)
        if math.isfinite(seconds) and abs(seconds) < 9.2e15:
            part, whole = math.modf(seconds)
            return int(whole) * 1000 + _round_half_away(part * 1000)
    m = _RFC3339.fullmatch(text)
    if m is not None:
        base, fraction, zone = m.groups()
        try:
            moment = datetime.fromisoformat(base + zone.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            ms = (moment - _EPOCH) // timedelta(milliseconds=1)
            return ms + (int(fraction[:3].ljust(3, "0")) if fraction else 0)
    if text == _MIN_TIME_TEXT:
        return MIN_TIME_MS
    if text == _MAX_TIME_TEXT:
        return MAX_TIME_MS
    raise ValueError(f'cannot parse "{text}" to a valid timestamp')


def parse_duration_ms(text: str) -> int:
    """Milliseconds of seconds (``15``, ``0.5``) or a Prometheus duration (``1m30s``)."""
    if _FLOAT.fullmatch(text):
        seconds = float(text)
        if abs(seconds * 1e9) > 2**63 - 1:
            raise ValueError(f'cannot parse "{text}" to a valid duration. It overflows int64')
        # Go truncates to nanoseconds; the store keeps milliseconds.
        return math.trunc(seconds * 1000)
    m = _DURATION.fullmatch(text)
    if text and m is not None and any(m.groups()):
        ms = sum(int(g) * unit for g, unit in zip(m.groups(), _DURATION_MS, strict=True) if g)
        if ms <= _MAX_DURATION_MS:
            return ms
    raise ValueError(f'cannot parse "{text}" to a valid duration')


def time_param(value: str | None, name: str, default: int) -> int:
    """An optional time parameter (``time``, ``start``, ``end`` of the metadata endpoints)."""
    if not value:
        return default
    try:
        return parse_time(value)
    except ValueError as e:
        raise invalid_parameter(name, f"Invalid time value for '{name}': {e}") from None


def required_time(value: str | None, name: str) -> int:
    """``start`` and ``end`` of a range query, which have no default."""
    try:
        return parse_time(value or "")
    except ValueError as e:
        raise invalid_parameter(name, str(e)) from None


def duration_param(value: str | None, name: str) -> int:
    """``step`` or ``timeout``, in milliseconds."""
    try:
        return parse_duration_ms(value or "")
    except ValueError as e:
        raise invalid_parameter(name, str(e)) from None


def limit_param(value: str | None) -> int:
    """``limit``: 0 (absent) means no limit."""
    if not value:
        return 0
    try:
        limit = int(value, 10)
    except ValueError:
        raise invalid_parameter(
            "limit", f'strconv.Atoi: parsing "{value}": invalid syntax'
        ) from None
    if limit < 0:
        raise invalid_parameter("limit", "limit must be non-negative")
    return limit


def label_name(name: str) -> str:
    """A label name from the path of ``/label/<name>/values``."""
    if not _LABEL_NAME.fullmatch(name):
        raise ApiError("bad_data", f'invalid label name: "{name}"')
    return name


def matcher_sets(texts: Sequence[str], parameter: str | None = None) -> list[list[Matcher]]:
    """The selectors of ``match[]``; each must have a matcher that does not match the empty
    string, as in Prometheus. ``parameter`` names it in the error (``/series`` does)."""

    def refuse(message: str) -> ApiError:
        if parameter is not None:
            return invalid_parameter(parameter, message)
        return ApiError("bad_data", message)

    sets = []
    for text in texts:
        try:
            sets.append(parse_selector(text))
        except SelectorError as e:
            # promql-parser refuses what Prometheus' selector parser leaves to this check.
            if _EMPTY_MATCHERS in str(e):
                raise refuse(_EMPTY_MESSAGE) from None
            raise refuse(str(e)) from None
    for matchers in sets:
        if all(m.matches("") for m in matchers):
            raise refuse(_EMPTY_MESSAGE)
    return sets
