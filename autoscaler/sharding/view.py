"""When a replica may act on a key: it owns the key now, and owned it in every view of the
members it held during the hand-off time before.

A replica that gains a key waits ``handoff_seconds`` (the Lease duration less one renew
period): the former owner, if alive, re-reads the members every renew period and drops the key
within one; if it lost contact with the API server, its own Lease renewal went stale first and
it stopped acting on everything. A key lost is dropped at once. So a dead replica's share moves
within two Lease durations (one to notice that its Lease is no longer renewed, one to hand
off), and no key ever has two acting owners.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from autoscaler.sharding.hashing import owner

__all__ = ["ShardView"]


@dataclass(frozen=True)
class _Held:
    members: frozenset[str]
    until: float  # when this view was replaced (inf: it is the current one)


class ShardView:
    """The members as this replica has seen them over time; pure logic, no I/O."""

    def __init__(self, identity: str, handoff_seconds: float, lease_seconds: float) -> None:
        self.identity = identity
        self._handoff_s = handoff_seconds
        self._lease_s = lease_seconds
        # Before the first observation this replica was nobody's member: it owns nothing
        # until a hand-off time after it joined.
        self._views: deque[_Held] = deque([_Held(frozenset(), float("inf"))])
        self._renewed_at: float | None = None

    @property
    def members(self) -> frozenset[str]:
        """The members now."""
        return self._views[-1].members

    def observe(self, members: frozenset[str], now: float, renewed: bool) -> None:
        """A fresh list of members; ``renewed`` if this replica's own Lease was renewed now."""
        if renewed:
            self._renewed_at = now
        if members != self._views[-1].members:
            last = self._views.pop()
            self._views.append(_Held(last.members, now))
            self._views.append(_Held(members, float("inf")))
        while len(self._views) > 1 and self._views[0].until < now - self._handoff_s:
            self._views.popleft()

    def live(self, now: float) -> bool:
        """Whether this replica's own Lease is unexpired (it renewed within a lease)."""
        return self._renewed_at is not None and now - self._renewed_at < self._lease_s

    def owner(self, key: str) -> str | None:
        """The owner of ``key`` in the current view."""
        return owner(key, self.members)

    def owns(self, key: str, now: float) -> bool:
        """Whether this replica may act on ``key`` now."""
        if not self.live(now):
            return False
        recent = (v for v in self._views if v.until > now - self._handoff_s)
        return all(owner(key, v.members) == self.identity for v in recent)
