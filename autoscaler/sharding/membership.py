"""Members of the shard group: every replica renews a Lease of its own and lists the others.

A member's Lease is live while this replica has seen its record change within one Lease
duration of its own clock (as the leader election judges the leader's Lease), so clocks that
disagree between replicas do not matter. On a graceful stop a replica deletes its Lease, and
its share moves without waiting for the Lease to expire.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

from kubernetes import client as k8s

from autoscaler.controller.settings import LeaderSettings
from autoscaler.sharding.view import ShardView
from collectors.kube import KubeApiError, call
from runtime.backoff import Backoff
from runtime.clock import Clock, sleep_or_stop, to_datetime

__all__ = ["GROUP_LABEL", "ShardMembership", "lease_name"]

log = logging.getLogger(__name__)

GROUP_LABEL = "foresight.dev/shard-group"
NOT_FOUND = 404
_ONE_ATTEMPT = Backoff(0.0, 0.0, attempts=0)
_INVALID = re.compile(r"[^a-z0-9-]+")


def lease_name(group: str, identity: str) -> str:
    """A valid Lease name for ``identity`` in ``group`` (DNS-1123, at most 63 characters)."""
    base = _INVALID.sub("-", f"{group}-shard-{identity}".lower()).strip("-")
    if len(base) <= 63:
        return base
    digest = hashlib.sha256(base.encode()).hexdigest()[:10]
    return f"{base[:52].rstrip('-')}-{digest}"


class ShardMembership:
    """Keeps this replica's Lease and the view of the members; see the module's docstring."""

    def __init__(
        self, api: k8s.ApiClient, clock: Clock, settings: LeaderSettings, group: str, identity: str
    ) -> None:
        self._api = k8s.CoordinationV1Api(api)
        self._clock = clock
        self._settings = settings
        self.group = group
        self.identity = identity
        self.name = lease_name(group, identity)
        handoff = settings.lease_seconds - settings.renew_seconds
        self.view = ShardView(identity, handoff, settings.lease_seconds)
        # holder -> (record last seen, when it was first seen on this clock)
        self._seen: dict[str, tuple[str, float]] = {}

    async def _do(self, fn: Any, *args: Any, what: str, **kwargs: Any) -> Any:
        return await call(
            fn,
            *args,
            clock=self._clock,
            retry=_ONE_ATTEMPT,
            what=what,
            _request_timeout=self._settings.renew_seconds,
            **kwargs,
        )

    def _lease(self, existing: k8s.V1Lease | None) -> k8s.V1Lease:
        now = to_datetime(self._clock.now())
        spec = k8s.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=max(1, round(self._settings.lease_seconds)),
            acquire_time=(existing.spec.acquire_time if existing and existing.spec else now),
            renew_time=now,
        )
        meta = k8s.V1ObjectMeta(
            name=self.name,
            namespace=self._settings.namespace,
            labels={GROUP_LABEL: self.group, "app.kubernetes.io/managed-by": "foresight"},
            resource_version=(
                existing.metadata.resource_version if existing and existing.metadata else None
            ),
        )
        return k8s.V1Lease(metadata=meta, spec=spec)

    async def renew(self) -> bool:
        """Create or renew this replica's Lease; True if the API server took it."""
        ns = self._settings.namespace
        try:
            try:
                current = await self._do(
                    self._api.read_namespaced_lease, self.name, ns, what="read shard lease"
                )
            except KubeApiError as e:
                if e.status != NOT_FOUND:
                    raise
                await self._do(
                    self._api.create_namespaced_lease,
                    ns,
                    self._lease(None),
                    what="create shard lease",
                )
                return True
            await self._do(
                self._api.replace_namespaced_lease,
                self.name,
                ns,
                self._lease(current),
                what="renew shard lease",
            )
            return True
        except KubeApiError as e:
            log.warning("shard lease %s/%s not renewed: %s", ns, self.name, e)
            return False

    async def members(self, started: float) -> frozenset[str] | None:
        """The live members now; None if the API server did not answer."""
        try:
            leases = await self._do(
                self._api.list_namespaced_lease,
                self._settings.namespace,
                what="list shard leases",
                label_selector=f"{GROUP_LABEL}={self.group}",
            )
        except KubeApiError as e:
            log.warning("shard leases not listed: %s", e)
            return None
        live = set()
        present = set()
        for lease in leases.items:
            spec = lease.spec
            holder = spec.holder_identity if spec is not None else None
            if not holder:
                continue
            present.add(holder)
            record = str(spec.renew_time)
            seen = self._seen.get(holder)
            if seen is None or seen[0] != record:
                self._seen[holder] = seen = (record, started)
            if started - seen[1] < self._settings.lease_seconds:
                live.add(holder)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return frozenset(live)

    async def step(self) -> None:
        """Renew, list, and update the view."""
        started = self._clock.now()
        renewed = await self.renew()
        members = await self.members(started)
        if members is None:
            # Without a fresh list the view stays; the stale renewal stops all acting in time.
            self.view.observe(self.view.members, started, renewed)
            return
        if renewed:
            members |= {self.identity}
        before = self.view.members
        self.view.observe(members, started, renewed)
        if members != before:
            log.info("shard members: %s", ", ".join(sorted(members)) or "none")

    async def run(self, stop: asyncio.Event) -> None:
        """Renew and list every ``renew_seconds`` until ``stop``; then delete the Lease."""
        while not stop.is_set():
            try:
                await self.step()
            except Exception:  # a bug must not end the membership silently
                log.exception("shard membership round failed")
            await sleep_or_stop(self._clock, self._settings.renew_seconds, stop)
        await self.leave()

    async def leave(self) -> None:
        """Delete this replica's Lease, so its share moves at once."""
        try:
            await self._do(
                self._api.delete_namespaced_lease,
                self.name,
                self._settings.namespace,
                what="delete shard lease",
            )
        except KubeApiError as e:
            if e.status != NOT_FOUND:
                log.warning("shard lease %s not deleted: %s", self.name, e)
