"""Prometheus durations (``1h30m``, ``5m``, ``0s``): parsing and the canonical spelling."""

from __future__ import annotations

import re

_UNITS_MS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}
_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?"
)
_ORDER = ("y", "w", "d", "h", "m", "s", "ms")


class DurationError(ValueError):
    """Text that is not a Prometheus duration."""


def parse_duration_ms(text: str) -> int:
    """Milliseconds of a duration such as ``1h30m``; ``0`` alone is accepted."""
    text = text.strip()
    if text == "0":
        return 0
    m = _DURATION.fullmatch(text)
    if not text or m is None or not any(m.groups()):
        raise DurationError(f'not a valid duration string: "{text}"')
    return sum(int(g) * _UNITS_MS[u] for g, u in zip(m.groups(), _ORDER, strict=True) if g)


def format_duration_ms(ms: int) -> str:
    """The spelling Prometheus prints (``1h30m``, ``0s``)."""
    if ms == 0:
        return "0s"
    out = []
    rest = ms
    for unit in _ORDER:
        size = _UNITS_MS[unit]
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out)
