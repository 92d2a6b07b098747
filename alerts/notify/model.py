"""Alerts as the notifier sees them, and Alertmanager's label fingerprint."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

Labels = tuple[tuple[str, str], ...]

ZERO_TIME = "0001-01-01T00:00:00Z"
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF


def _fnv(pairs: Iterable[tuple[str, str]]) -> str:
    h = _FNV_OFFSET
    for name, value in pairs:
        for part in (name, value):
            for b in part.encode():
                h = ((h ^ b) * _FNV_PRIME) & _MASK
            h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


# Fingerprints of the label sets seen lately. A rule re-sends its firing alerts every few
# rounds and the notifier looks each one up by fingerprint several times: tens of
# thousands of alerts hashed byte by byte in Python cost seconds a round.
_known: dict[Labels, str] = {}
_KNOWN_MAX = 1 << 18


def _remember(labels: Labels, fp: str) -> None:
    if len(_known) >= _KNOWN_MAX:
        _known.clear()
    _known[labels] = fp


def fingerprint(labels: Mapping[str, str] | Labels) -> str:
    """FNV-1a 64 over sorted ``name 0xff value 0xff`` pairs, as 16 hex digits."""
    if isinstance(labels, Mapping):
        return _fnv(sorted(labels.items()))
    fp = _known.get(labels)
    if fp is None:
        fp = _fnv(sorted(labels))
        _remember(labels, fp)
    return fp


def fingerprints(label_sets: Sequence[Labels]) -> list[str]:
    """:func:`fingerprint` of each label set; those not seen lately are hashed together,
    one byte position at a time over all of them (a cluster-wide incident hands the
    notifier tens of thousands of new alerts in one round)."""
    missing = list({lb: None for lb in label_sets if lb not in _known})
    if len(missing) > 1:
        for lb, fp in zip(missing, _fnv_many(missing), strict=True):
            _remember(lb, fp)
    return [fingerprint(lb) for lb in label_sets]


def _fnv_many(label_sets: Sequence[Labels]) -> list[str]:
    # "\udcff" is written as the byte 0xff by surrogateescape: one encode per label set.
    blobs = [
        "".join([f"{name}\udcff{value}\udcff" for name, value in sorted(lb)]).encode(
            "utf-8", "surrogateescape"
        )
        for lb in label_sets
    ]
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    # Shortest first: the sets still being hashed at byte j are a suffix.
    order = np.argsort(lengths, kind="stable")
    starts = np.zeros(len(blobs), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    flat = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    ends, starts = lengths[order], starts[order]
    h = np.full(len(blobs), _FNV_OFFSET, dtype=np.uint64)
    prime = np.uint64(_FNV_PRIME)
    first = 0
    for j in range(int(ends[-1]) if len(ends) else 0):
        first += int(np.searchsorted(ends[first:], j, side="right"))
        # uint64 products wrap modulo 2**64, as the mask does.
        h[first:] = (h[first:] ^ flat[starts[first:] + j]) * prime
    out = np.empty_like(h)
    out[order] = h
    return [f"{x:016x}" for x in out.tolist()]


@functools.lru_cache(maxsize=4096)
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
