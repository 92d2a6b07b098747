"""Alerts as the notifier sees them, and Alertmanager's label fingerprint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

Labels = tuple[tuple[str, str], ...]

ZERO_TIME = "0001-01-01T00:00:00Z"
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF


def fingerprint(labels: Mapping[str, str] | Labels) -> str:
    """FNV-1a 64 over sorted ``name 0xff value 0xff`` pairs, as 16 hex digits."""
    pairs = sorted(labels.items() if isinstance(labels, Mapping) else labels)
    h = _FNV_OFFSET
    for name, value in pairs:
        for part in (name, value):
            for b in part.encode():
                h = ((h ^ b) * _FNV_PRIME) & _MASK
            h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def rfc3339(ms: int) -> str:
    """Go's RFC 3339 (nano) spelling of a UTC time in ms."""
    seconds, rest = divmod(ms, 1000)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f".{rest:03d}".rstrip("0") if rest else ""
    return f"{base}{frac}Z"


@dataclass(frozen=True)
class NotifyAlert:
    """An alert handed to the notifier. ``ends_at`` in the past means resolved."""

    labels: Labels
    annotations: Labels
    starts_at: int
    ends_at: int
    generator_url: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def resolved(self, now_ms: int) -> bool:
        return 0 < self.ends_at <= now_ms
