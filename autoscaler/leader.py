"""Leader election with a ``coordination.k8s.io/v1`` Lease, as client-go does it.

The leader renews the Lease every ``renew_seconds``. A standby takes the Lease over when it
has seen the same record, unrenewed, for ``lease_seconds`` of its own clock (so clock skew
between replicas does not matter). :meth:`LeaderElector.is_leader` is computed from the time
of the last successful renewal, so a leader cut off from the API server stops acting within
one lease period even if no call ever returns. Writes carry the ``resourceVersion``: two
candidates racing for the Lease cannot both win.

Notifying is kept apart from acting (:meth:`LeaderElector.may_notify`): a leader that loses
contact with the API server stops scaling within the lease, but goes on notifying for as long
as it cannot learn that another replica holds the Lease. An outage of the API server is when
alerts matter most; two replicas notifying at once repeat a notification (as Alertmanager
replicas do before their gossip settles), one silent replica would lose it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s

from autoscaler.controller.settings import LeaderSettings
from collectors.kube import KubeApiError, call
from runtime.backoff import Backoff
from runtime.clock import Clock, sleep_or_stop, to_datetime

__all__ = ["LeaderElector", "default_identity"]

log = logging.getLogger(__name__)

NOT_FOUND = 404
CONFLICT = 409
TOO_MANY_REQUESTS = 429
# One attempt per round: the next round is the retry, and a slow retry must not hold
# a leader past its lease.
_ONE_ATTEMPT = Backoff(0.0, 0.0, attempts=0)


def default_identity() -> str:
    """Host name and process id: unique per replica and per restart."""
    return f"{socket.gethostname()}_{os.getpid()}"


class LeaderElector:
    """Campaigns for the Lease and keeps it; ``on_change(bool)`` hears every transition."""

    def __init__(
        self,
        api: k8s.ApiClient,
        clock: Clock,
        settings: LeaderSettings,
        on_change: Callable[[bool], None] | None = None,
        on_notify_change: Callable[[bool], None] | None = None,
    ) -> None:
        """``on_change`` hears transitions of :meth:`is_leader`, ``on_notify_change`` those of
        :meth:`may_notify`."""
        self.identity = settings.identity or default_identity()
        self._api = k8s.CoordinationV1Api(api)
        self._clock = clock
        self._settings = settings
        self._on_change = on_change
        self._on_notify_change = on_notify_change
        self._renewed_at: float | None = None
        # The last Lease record this replica read or wrote named it, and since then the API
        # server has not answered: nobody can have told it that another replica leads.
        self._held_last = False
        self._out_of_contact = False
        self._was_notifying = False
        self._without_lease = False
        self._observed: tuple[str, str] | None = None
        self._observed_at = 0.0
        self._was_leader = False
        self.transitions = 0

    def is_leader(self) -> bool:
        """Whether this replica holds an unexpired Lease now."""
        if not self._settings.enabled:
            return True
        return (
            self._renewed_at is not None
            and self._clock.now() - self._renewed_at < self._settings.lease_seconds
        )

    def may_notify(self) -> bool:
        """Whether this replica should send notifications: it leads, or it led when the API
        server stopped answering and has not heard of another holder since."""
        if self.is_leader():
            return True
        return self._settings.enabled and self._held_last and self._out_of_contact

    def _contact(self, error: KubeApiError | None) -> None:
        """Record whether the API server answered: an error that is the server's or the
        network's (0, 429, 5xx) says nothing about who holds the Lease."""
        self._out_of_contact = error is not None and (
            error.status in (0, TOO_MANY_REQUESTS) or error.status >= 500
        )

    def _notify(self) -> None:
        notifying = self.may_notify()
        without_lease = notifying and not self.is_leader()
        if without_lease != self._without_lease:
            self._without_lease = without_lease
            if without_lease:
                log.warning(
                    "%s goes on notifying without the lease: the API server does not answer",
                    self.identity,
                )
            else:
                log.info("%s no longer notifies without the lease", self.identity)
        if notifying != self._was_notifying:
            self._was_notifying = notifying
            if self._on_notify_change is not None:
                self._on_notify_change(notifying)
        leader = self.is_leader()
        if leader != self._was_leader:
            self._was_leader = leader
            self.transitions += 1
            log.info(
                "%s %s leadership of lease %s/%s",
                self.identity,
                "acquired" if leader else "lost",
                self._settings.namespace,
                self._settings.name,
            )
            if self._on_change is not None:
                self._on_change(leader)

    async def _do(self, fn: Any, *args: Any, what: str) -> Any:
        # A call that outlives the renew period is worse than a failed one.
        return await call(
            fn,
            *args,
            clock=self._clock,
            retry=_ONE_ATTEMPT,
            what=what,
            _request_timeout=self._settings.renew_seconds,
        )

    def _spec(self, transitions: int, acquire: Any) -> k8s.V1LeaseSpec:
        now = to_datetime(self._clock.now())
        return k8s.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=max(1, round(self._settings.lease_seconds)),
            acquire_time=acquire or now,
            renew_time=now,
            lease_transitions=transitions,
        )

    async def try_acquire_or_renew(self) -> bool:
        """One round of the campaign; True if this replica leads after it."""
        s = self._settings
        started = self._clock.now()
        try:
            lease = await self._do(
                self._api.read_namespaced_lease, s.name, s.namespace, what="read lease"
            )
        except KubeApiError as e:
            self._contact(e if e.status != NOT_FOUND else None)
            if e.status != NOT_FOUND:
                log.warning("cannot read lease %s/%s: %s", s.namespace, s.name, e)
                self._notify()
                return self.is_leader()
            body = k8s.V1Lease(
                metadata=k8s.V1ObjectMeta(name=s.name, namespace=s.namespace),
                spec=self._spec(0, None),
            )
            try:
                await self._do(
                    self._api.create_namespaced_lease, s.namespace, body, what="create lease"
                )
                self._renewed_at = started
                self._held_last = True
            except KubeApiError as e2:
                self._contact(e2)
                log.info("lease %s/%s not created: %s", s.namespace, s.name, e2)
            self._notify()
            return self.is_leader()

        self._contact(None)
        spec = lease.spec or k8s.V1LeaseSpec()
        holder = spec.holder_identity or ""
        record = (holder, str(spec.renew_time))
        if record != self._observed:
            self._observed, self._observed_at = record, started
        mine = holder == self.identity
        self._held_last = mine
        expired = not holder or started - self._observed_at >= s.lease_seconds
        if not mine and not expired:
            self._renewed_at = None
            self._notify()
            return False
        transitions = int(spec.lease_transitions or 0) + (0 if mine else 1)
        lease.spec = self._spec(transitions, spec.acquire_time if mine else None)
        try:
            await self._do(
                self._api.replace_namespaced_lease, s.name, s.namespace, lease, what="renew lease"
            )
            self._renewed_at = started
            self._held_last = True
        except KubeApiError as e:
            self._contact(e)
            # A conflict: another replica wrote the Lease first.
            self._held_last = self._held_last and e.status != CONFLICT
            level = logging.INFO if e.status == CONFLICT else logging.WARNING
            log.log(level, "lease %s/%s not renewed: %s", s.namespace, s.name, e)
        self._notify()
        return self.is_leader()

    async def run(self, stop: asyncio.Event) -> None:
        """Campaign every ``renew_seconds`` until ``stop``; then release the Lease."""
        if not self._settings.enabled:
            self._renewed_at = self._clock.now()
            self._notify()
            await stop.wait()
            return
        while not stop.is_set():
            try:
                await self.try_acquire_or_renew()
            except Exception:  # a bug must not end the campaign silently
                log.exception("leader election round failed")
            await sleep_or_stop(self._clock, self._settings.renew_seconds, stop)
        await self.release()

    async def release(self) -> None:
        """Give the Lease up so a standby takes over at once (graceful shutdown)."""
        if not self._settings.enabled or not self.is_leader():
            return
        s = self._settings
        try:
            lease = await self._do(
                self._api.read_namespaced_lease, s.name, s.namespace, what="read lease"
            )
            if lease.spec is not None and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = ""
                lease.spec.lease_duration_seconds = 1
                await self._do(
                    self._api.replace_namespaced_lease,
                    s.name,
                    s.namespace,
                    lease,
                    what="release lease",
                )
        except KubeApiError as e:
            log.warning("cannot release lease %s/%s: %s", s.namespace, s.name, e)
        self._renewed_at = None
        self._held_last = False
        self._notify()
