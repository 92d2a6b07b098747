"""The alert engine as one component of the ``foresight run`` process.

``AlertingService`` evaluates rule groups on their grid, reloads rule files when they change
(and on :meth:`reload`), routes and groups the alerts, and delivers notifications from the
persisted outbox. Every replica evaluates, so a standby's alert state is warm; only the leader
flushes groups and sends (:meth:`set_leader`), and losing leadership stops sending at once.

Rule groups are evaluated one at a time in a worker thread (:func:`evaluate_round`), so a long
round never stalls the event loop that renews the Lease and answers ``/healthz``; the loop
installs each evaluated group and hands its alerts to the notifier, and the alert state is
written in a thread after the notifier has persisted what it took.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress

import httpx
from aiohttp import web
from prometheus_client.registry import Collector

from alerts import api
from alerts.metrics import AlertingCollector, Sources, notification_families
from alerts.notify.delivery import Delivery
from alerts.notify.dispatch import Dispatcher
from alerts.notify.outbox import Outbox
from alerts.notify.silences import Silences
from alerts.rules.group import EvalContext
from alerts.rules.manager import RuleManager, alerts_for_notifier
from alerts.rules.model import RuleSpec
from alerts.rules.state import Alert
from alerts.settings import NotifySettings, RuleSettings
from promql import Engine
from runtime.clock import Clock, in_thread
from runtime.gcpause import call_paused
from tsdb import Store
from tsdb.recorder import FamilyRecorder

log = logging.getLogger(__name__)

# Longest sleep of the loop, so that a clock that jumps (tests, suspend) is noticed.
_MAX_SLEEP_S = 60.0


class NotifierFailed(Exception):
    """The notification delivery task ended while the service runs."""


async def evaluate_round(manager: RuleManager, now_ms: int, clock: Clock | None = None) -> int:
    """One round as the service runs it: each due group evaluated in a worker thread and
    installed on the loop, then the notifier's and the alert state's persistence (the latter
    in a thread). Returns how many groups ran.

    Neither the evaluations nor the state file's rows (one per alert a round changed, tens
    of thousands when they appear) set off a full collection: one there walks what the round
    made, a third of a second after a cluster's first round."""
    due = manager.due(now_ms)
    for g, slot in due:
        manager.install(await in_thread(clock, call_paused, manager.evaluate_apart, g, slot))
    if due:
        manager.commit_notifier()
        await in_thread(clock, call_paused, manager.save_state, list(manager.groups))
    return len(due)


class AlertingService:
    """Rules, notifications and their HTTP API, over one store, engine and clock."""

    def __init__(
        self,
        rules: RuleSettings,
        notify: NotifySettings,
        store: Store,
        clock: Clock,
        engine: Engine,
        *,
        client: httpx.AsyncClient | None = None,
        evaluate_on_standby: bool = True,
    ) -> None:
        """``evaluate_on_standby=False``: only the leader evaluates rules (shards, whose
        standbys must not write rule results beside the leader's into a shared store)."""
        self.rules_settings = rules
        self._evaluate_on_standby = evaluate_on_standby
        self.notify_settings = notify
        self.store = store
        self.clock = clock
        state_dir = rules.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        retention_ms = round(notify.retention_seconds * 1000)
        self.outbox = Outbox(state_dir, retention_ms=retention_ms)
        self.silences = Silences(state_dir, retention_ms)
        self.dispatcher = Dispatcher(
            notify, self.outbox, self.silences, state_dir, rules.external_url
        )
        self.delivery = Delivery(
            self.dispatcher.targets, self.outbox, clock, notify.delivery, client
        )
        ctx = EvalContext(
            engine,
            store,
            dict(rules.external_labels),
            rules.external_url,
            round(rules.resend_delay_seconds * 1000),
        )
        self.manager = RuleManager(rules, ctx, self._sink, self.dispatcher.save)
        self.receivers = [r.name for r in notify.receivers]
        self._leader = False
        self._reload_requested = False
        self._wake: asyncio.Event | None = None
        self._sender: asyncio.Task[None] | None = None
        self._running = False
        self._closed = False
        self.reload_ok = True
        self._recorder = FamilyRecorder(store)

    def _now_ms(self) -> int:
        return round(self.clock.now() * 1000)

    def _sink(self, rule: RuleSpec, alerts: Sequence[Alert]) -> None:
        items = alerts_for_notifier(
            rule,
            alerts,
            dict(self.rules_settings.external_labels),
            self.rules_settings.external_url,
        )
        if self.dispatcher.put(items, self._now_ms(), send=self._leader):
            self.delivery.notify()

    # -- leadership ---------------------------------------------------------------------

    @property
    def leader(self) -> bool:
        return self._leader

    def set_leader(self, leader: bool) -> None:
        """Only the leader flushes groups and sends; the standby keeps evaluating."""
        if leader == self._leader:
            return
        self._leader = leader
        log.info("alert notifications %s", "enabled (leader)" if leader else "stopped (standby)")
        if not leader:
            self._stop_sender()
        elif self._running:
            self._start_sender()
        if self._wake is not None:
            self._wake.set()

    def _start_sender(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(
                self.delivery.run(), name="alert-delivery"
            )
            self._sender.add_done_callback(self._sender_ended)

    def _sender_ended(self, task: asyncio.Task[None]) -> None:
        # The notifier is part of this task: its death wakes the loop, which raises it, so
        # the service's supervisor stops the service (see run).
        if not task.cancelled() and self._wake is not None:
            self._wake.set()

    def _check_sender(self) -> None:
        sender = self._sender
        if sender is None or not sender.done() or sender.cancelled():
            return
        error = sender.exception()
        raise NotifierFailed(
            f"notification delivery ended: {type(error).__name__}: {error}"
            if error is not None
            else "notification delivery ended unexpectedly"
        ) from error

    def _stop_sender(self) -> None:
        if self._sender is not None:
            self._sender.cancel()

    async def _await_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is None:
            return
        if sender.done():
            # Its failure, if any, was raised by run (NotifierFailed).
            if not sender.cancelled():
                sender.exception()
            return
        sender.cancel()
        with suppress(asyncio.CancelledError):
            await sender

    # -- the loop ----------------------------------------------------------------------

    def reload(self) -> None:
        """Reload the rule files now (SIGHUP); a bad file keeps its last good version."""
        self._reload_requested = True
        if self._wake is not None:
            self._wake.set()

    def _do_reload(self, force: bool) -> None:
        self.reload_ok = self.manager.reload(force=force)

    def _record_self_metrics(self, now_ms: int) -> None:
        families = notification_families(self.delivery.counts, self.outbox, self.receivers)
        self._recorder.record(families, now_ms)

    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate, flush and deliver until ``stop`` is set.

        Raises :class:`NotifierFailed` if the notifier's task dies: delivery retries every
        failed send itself, so its end is a bug that must stop the service, not go unseen."""
        self._wake = asyncio.Event()
        self._running = True
        self._do_reload(force=True)
        self._reload_requested = False
        next_check = self.clock.now() + self.rules_settings.reload_check_seconds
        try:
            if self._leader:
                self._start_sender()
            while not stop.is_set():
                self._wake.clear()
                self._check_sender()
                now = self.clock.now()
                if self._reload_requested or now >= next_check:
                    forced, self._reload_requested = self._reload_requested, False
                    self._do_reload(forced)
                    self.silences.collect_garbage(round(now * 1000))
                    next_check = now + self.rules_settings.reload_check_seconds
                await self._evaluate(round(now * 1000))
                if self._leader and self.dispatcher.flush(self._now_ms()):
                    self.delivery.notify()
                await self._sleep(stop, self._next_wake_s(next_check))
        finally:
            self._running = False
            await self._await_sender()

    async def _evaluate(self, now_ms: int) -> None:
        if not (self._leader or self._evaluate_on_standby) or not self.manager.due(now_ms):
            return
        self._record_self_metrics(now_ms)
        await evaluate_round(self.manager, now_ms, self.clock)

    def _next_wake_s(self, next_check: float) -> float:
        now = self.clock.now()
        now_ms = round(now * 1000)
        candidates = [next_check, now + _MAX_SLEEP_S]
        nxt = self.manager.next_due_ms(now_ms)
        if nxt is not None:
            candidates.append(nxt / 1000)
        flush = self.dispatcher.next_flush_ms() if self._leader else None
        if flush is not None:
            candidates.append(flush / 1000)
        return max(0.0, min(candidates) - now)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        assert self._wake is not None
        waiters = [
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self.clock.sleep(seconds)),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            for w in waiters:
                with suppress(asyncio.CancelledError):
                    await w

    # -- edges -------------------------------------------------------------------------

    def _sources(self) -> Sources:
        return Sources(
            self.manager.groups,
            self.delivery.counts,
            self.outbox,
            self.receivers,
            self.silences,
            self.reload_ok,
            self._now_ms(),
        )

    def degraded(self) -> str | None:
        """What is wrong with the rule files, for ``/readyz``; None when every file loaded."""
        failed = self.manager.file_errors
        if not failed:
            return None
        detail = "; ".join(str(e) for errors in failed.values() for e in errors.errors)
        files = "file" if len(failed) == 1 else "files"
        return f"rules: {len(failed)} {files} failed to load: {detail}"

    def prometheus_collector(self) -> Collector:
        """A collector for ``/metrics`` (register it on the process' registry)."""
        return AlertingCollector(self._sources)

    def http_routes(self) -> list[web.RouteDef]:
        """``/api/v1/alerts``, ``/api/v1/rules`` and ``/api/v2/silences``."""
        return api.routes(
            lambda: self.manager.groups,
            self.silences,
            self._now_ms,
            lambda: [e for errors in self.manager.file_errors.values() for e in errors.errors],
        )

    async def aclose(self) -> None:
        """Stop sending and persist alert state, groups and the outbox."""
        if self._closed:
            return
        self._closed = True
        await self._await_sender()
        try:
            self.manager.commit()
        finally:
            self.manager.close()
            self.outbox.close()
            await self.delivery.aclose()
