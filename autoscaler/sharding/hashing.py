"""Rendezvous (highest random weight) hashing: every key has one owner among the members.

When a member leaves, only its keys move, spread evenly over the rest; when one joins, it takes
an even share from each. The weight is a keyed BLAKE2b digest, the same in every process and
Python version (``hash()`` is salted per process)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection

__all__ = ["owner"]


def _weight(member: str, key: str) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=8, key=member.encode()[:64]).digest()
    return int.from_bytes(digest, "big")


def owner(key: str, members: Collection[str]) -> str | None:
    """The member that owns ``key``; None without members. Ties (never seen in 64 bits) go
    to the smaller name, so every replica agrees."""
    best: tuple[int, str] | None = None
    for member in members:
        candidate = (_weight(member, key), member)
        if (
            best is None
            or candidate[0] > best[0]
            or (candidate[0] == best[0] and candidate[1] < best[1])
        ):
            best = candidate
    return None if best is None else best[1]
