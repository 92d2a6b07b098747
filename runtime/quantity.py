"""Kubernetes resource quantities ("250m", "512Mi", "1.5", "2e3") to and from floats."""

from __future__ import annotations

import math
import re

__all__ = ["format_bytes", "format_cpu", "parse_quantity"]

_MULTIPLIERS = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$"
)


def parse_quantity(value: str | int | float) -> float:
    """The quantity as a float (cores for CPU, bytes for memory); ValueError if malformed."""
    if isinstance(value, bool):
        raise ValueError(f"quantities must be numbers or strings, not {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a quantity (e.g. 500m, 2, 1.5Gi, 512Mi)")
    number, exponent, suffix = match.groups()
    if exponent:
        return float(number + exponent)
    return float(number) * _MULTIPLIERS[suffix or ""]


def format_cpu(cores: float) -> str:
    """Cores in the canonical form: whole cores as integers, else millicores."""
    millis = round(cores * 1000)
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"


def format_bytes(size: float) -> str:
    """Bytes with the largest binary suffix that represents them exactly."""
    value = math.ceil(size)
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = int(_MULTIPLIERS[suffix])
        if value >= unit and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)
