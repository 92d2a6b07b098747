"""The ``humanize*`` template functions, with Prometheus' exact output."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from alerts.rules.gofmt import format_g


def _g4(v: float) -> str:
    return format_g(v, 4)


def humanize(v: float) -> str:
    """SI prefixes: ``1.234k``, ``12.5m``."""
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in "kMGTPEZY":
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _g4(v) + prefix
    prefix = ""
    for p in "munpfazy":
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v) + prefix


def humanize1024(v: float) -> str:
    """Binary prefixes: ``1Ki``, ``2.5Gi``."""
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _g4(v) + prefix


def humanize_duration(v: float) -> str:
    """Seconds as ``1d 2h 3m 4s`` or ``12.5ms``."""
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        whole = int(v)
        seconds = whole % 60
        minutes = (whole // 60) % 60
        hours = (whole // 3600) % 24
        days = whole // 86_400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in "munpfazy":
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(v: float) -> str:
    """A ratio as a percentage: ``0.1234`` → ``12.34%``."""
    return _g4(v * 100) + "%"


def humanize_timestamp(v: float) -> str:
    """Unix seconds as Go prints a UTC time: ``2021-01-01 00:00:00 +0000 UTC``."""
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    whole = math.floor(v)
    nanos = round((v - whole) * 1e9)
    try:
        base = datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OSError, OverflowError, ValueError) as e:
        # Beyond what a datetime holds: an error of this template, not of the whole group.
        raise ValueError(f"humanizeTimestamp: {v:g} is out of range") from e
    frac = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{base}{frac} +0000 UTC"
