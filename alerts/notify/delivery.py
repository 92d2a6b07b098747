"""Delivering outbox entries to their integrations: retries, backoff, Retry-After.

Network errors and 5xx are retried with exponential backoff and jitter; 429 waits at least
what ``Retry-After`` says; other 4xx are rejected at once (logged and counted). An entry
still undelivered ``dead_letter_after_seconds`` after it was queued is dead-lettered.

Entries of one aggregation group and integration (a lane) go out in the order they were
queued; lanes are independent, so a receiver that hangs or is down holds up only itself.
Every request carries the entry's id as ``Idempotency-Key``, the same on every retry, so a
receiver can drop the duplicates that at-least-once delivery allows.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Mapping
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from typing import Any

import httpx

from alerts.notify.outbox import Entry, Outbox
from alerts.notify.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign
from alerts.notify.targets import Target, receiver_of
from alerts.settings import DeliverySettings
from runtime.backoff import Backoff, retry_after_seconds
from runtime.clock import Clock
from runtime.redact import redact_text

log = logging.getLogger(__name__)

OUTCOMES = ("sent", "failed", "rejected", "dead_lettered")


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: ``delivered``, ``retry`` (not before ``retry_after_s``, when the
    receiver said) or ``rejected``."""

    result: str
    retry_after_s: float | None = None
    error: str = ""


def classify(status: int, headers: Mapping[str, str], text: str, now: float) -> Attempt:
    """The outcome of an HTTP response."""
    if 200 <= status < 300:
        return Attempt("delivered")
    text = text[:200]
    if status == 429:
        retry_after = retry_after_seconds(headers.get("Retry-After"), now)
        return Attempt("retry", retry_after, f"429: {text}")
    if status >= 500:
        return Attempt("retry", error=f"{status}: {text}")
    return Attempt("rejected", error=f"{status}: {text}")


class Delivery:
    """Sends every pending outbox entry until delivered, rejected or dead-lettered."""

    def __init__(
        self,
        targets: Mapping[str, Target],
        outbox: Outbox,
        clock: Clock,
        settings: DeliverySettings,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
        max_in_flight: int = 16,
    ) -> None:
        self.targets = targets
        self.outbox = outbox
        self.clock = clock
        self.settings = settings
        self._client = client
        self._own_clients: dict[bool, httpx.AsyncClient] = {}
        self._rng = rng or random.Random()
        # The outbox keeps an entry however long it waits, so a 429 waits its Retry-After in
        # full; the entry's age alone decides when it is dead-lettered.
        self._backoff = Backoff(
            settings.initial_backoff_seconds,
            settings.max_backoff_seconds,
            jitter=settings.jitter,
            cap_retry_after=False,
        )
        self._wake = asyncio.Event()
        self._in_flight: set[str] = set()
        self.max_in_flight = max_in_flight
        self.attempts = 0
        self.counts: Counter[tuple[str, str]] = Counter()

    def notify(self) -> None:
        """Wake the sender: something was queued."""
        self._wake.set()

    def _http(self, target: Target) -> httpx.AsyncClient:
        if self._client is not None:
            return self._client
        client = self._own_clients.get(target.verify_tls)
        if client is None:
            client = self._own_clients[target.verify_tls] = httpx.AsyncClient(
                verify=target.verify_tls
            )
        return client

    async def attempt(self, entry: Entry) -> Attempt:
        """One POST of ``entry``."""
        target = self.targets.get(entry.receiver)
        if target is None:
            return Attempt("rejected", error=f"unknown receiver {entry.receiver!r}")
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: entry.id}
        headers.update(target.headers)
        try:
            secret = target.secret_bytes()
        except OSError as e:
            return Attempt("retry", error=f"cannot read secret_file: {e.strerror}")
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, int(self.clock.now()), entry.body)
        # A virtual clock must not jump past a request that waits on real I/O.
        hold = getattr(self.clock, "hold", None)
        try:
            with hold() if hold is not None else nullcontext():
                response = await self._http(target).post(
                    target.url, content=entry.body, headers=headers, timeout=target.timeout_seconds
                )
        except httpx.HTTPError as e:
            # The error is logged and kept in the outbox; the URL in it may carry a token.
            return Attempt("retry", error=redact_text(f"{type(e).__name__}: {e}"))
        return classify(response.status_code, response.headers, response.text, self.clock.now())

    def _due(self, now_ms: int, limit: int) -> tuple[list[Entry], int | None]:
        """Entries to try now, first of their lane, at most ``limit``; and the next due time
        (``None`` if the scan stopped early or nothing waits)."""
        due: list[Entry] = []
        if limit <= 0:
            return due, None
        blocked: set[tuple[str, str]] = set()
        soonest: int | None = None
        for entry in self.outbox.pending.values():
            lane = (entry.receiver, entry.group_key)
            if lane in blocked:
                continue
            blocked.add(lane)
            if entry.id in self._in_flight:
                continue
            if entry.next_attempt_ms > now_ms:
                soonest = (
                    entry.next_attempt_ms
                    if soonest is None
                    else min(soonest, entry.next_attempt_ms)
                )
                continue
            due.append(entry)
            if len(due) >= limit:
                return due, None
        return due, soonest

    async def _send(self, entry: Entry) -> None:
        self._in_flight.add(entry.id)
        try:
            entry.attempts += 1
            self.attempts += 1
            outcome = await self.attempt(entry)
        finally:
            self._in_flight.discard(entry.id)
        self._record(entry, outcome)

    def _record(self, entry: Entry, outcome: Attempt) -> None:
        now_ms = round(self.clock.now() * 1000)
        receiver = receiver_of(entry.receiver)
        extra = {"receiver": entry.receiver, "attempt": entry.attempts}
        if outcome.result == "delivered":
            self.outbox.finish(entry.id, "delivered")
            self.counts[(receiver, "sent")] += 1
            return
        if outcome.result == "rejected":
            log.warning(
                "notification rejected by %s: %s", entry.receiver, outcome.error, extra=extra
            )
            self.outbox.finish(entry.id, "rejected", outcome.error)
            self.counts[(receiver, "rejected")] += 1
            return
        self.counts[(receiver, "failed")] += 1
        entry.last_error = outcome.error
        if now_ms - entry.created_ms >= self.settings.dead_letter_after_seconds * 1000:
            log.error(
                "notification to %s dead-lettered after %d attempts: %s",
                entry.receiver,
                entry.attempts,
                outcome.error,
                extra=extra,
            )
            self.outbox.finish(entry.id, "dead", outcome.error)
            self.counts[(receiver, "dead_lettered")] += 1
            return
        delay = self._backoff.delay(entry.attempts, outcome.retry_after_s, self._rng.random)
        log.info(
            "delivery to %s failed (attempt %d), retrying in %.1fs: %s",
            entry.receiver,
            entry.attempts,
            delay,
            outcome.error,
            extra=extra,
        )
        entry.next_attempt_ms = now_ms + round(delay * 1000)

    async def step(self) -> float | None:
        """Try every due entry once (concurrently, lanes in order); returns seconds until
        the next one is due, ``None`` when nothing is pending."""
        while True:
            now_ms = round(self.clock.now() * 1000)
            due, soonest = self._due(now_ms, self.max_in_flight)
            if not due:
                break
            await asyncio.gather(*(self._send(e) for e in due))
            if soonest is not None or len(due) < self.max_in_flight:
                break
        now_ms = round(self.clock.now() * 1000)
        due, soonest = self._due(now_ms, 1)
        if due:
            return 0.0
        if soonest is None:
            return None
        return max(0.0, (soonest - now_ms) / 1000)

    async def run(self) -> None:
        """Deliver until cancelled; in-flight attempts are cancelled with it (their entries
        stay pending and are sent again later)."""
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._wake.clear()
                now_ms = round(self.clock.now() * 1000)
                due, soonest = self._due(now_ms, self.max_in_flight - len(tasks))
                for entry in due:
                    tasks.add(asyncio.ensure_future(self._send(entry)))
                waiters: set[asyncio.Future[Any]] = set(tasks)
                waker = asyncio.ensure_future(self._wake.wait())
                waiters.add(waker)
                sleeper = None
                if soonest is not None and len(tasks) < self.max_in_flight:
                    sleeper = asyncio.ensure_future(
                        self.clock.sleep(max(0.0, (soonest - now_ms) / 1000))
                    )
                    waiters.add(sleeper)
                try:
                    done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waker.cancel()
                    if sleeper is not None:
                        sleeper.cancel()
                for t in done:
                    if t in tasks:
                        tasks.discard(t)
                        if not t.cancelled() and t.exception() is not None:
                            log.error("delivery task failed", exc_info=t.exception())
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with suppress(asyncio.CancelledError):
                    await t

    async def aclose(self) -> None:
        """Close the HTTP clients this delivery opened."""
        for client in self._own_clients.values():
            await client.aclose()
        self._own_clients.clear()
