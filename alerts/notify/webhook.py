"""Delivering outbox entries to webhook receivers: retries, backoff, Retry-After.

Network errors and 5xx are retried with exponential backoff and jitter; 429 waits at least
what ``Retry-After`` says; other 4xx are rejected at once (logged and counted). An entry
still undelivered ``dead_letter_after_seconds`` after it was queued is dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from alerts.notify.outbox import Entry, Outbox
from alerts.notify.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign
from alerts.settings import DeliverySettings, WebhookReceiverSettings
from collectors.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: ``delivered``, ``retry`` (after ``delay_s``) or ``rejected``."""

    result: str
    delay_s: float = 0.0
    error: str = ""


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, float(parsedate_to_datetime(value).timestamp()) - now)
    except (TypeError, ValueError):
        return None


def backoff_seconds(attempt: int, settings: DeliverySettings, rand: float) -> float:
    """Delay before retry number ``attempt`` (1-based)."""
    base = min(
        settings.max_backoff_seconds, settings.initial_backoff_seconds * 2.0 ** (attempt - 1)
    )
    return float(base * (1 + settings.jitter * rand))


def _secret(r: WebhookReceiverSettings) -> bytes | None:
    if r.secret is not None:
        return r.secret.get_secret_value().encode()
    if r.secret_file is not None:
        return r.secret_file.read_bytes().strip()
    return None


class WebhookDelivery:
    """Sends every pending outbox entry until delivered, rejected or dead-lettered."""

    def __init__(
        self,
        receivers: Mapping[str, WebhookReceiverSettings],
        outbox: Outbox,
        clock: Clock,
        settings: DeliverySettings,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.receivers = receivers
        self.outbox = outbox
        self.clock = clock
        self.settings = settings
        self._client = client
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self.attempts = 0

    def notify(self) -> None:
        """Wake the sender: something was queued."""
        self._wake.set()

    async def attempt(self, entry: Entry) -> Attempt:
        """One POST of ``entry``."""
        receiver = self.receivers.get(entry.receiver)
        if receiver is None:
            return Attempt("rejected", error=f"unknown receiver {entry.receiver!r}")
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: entry.id}
        headers.update(receiver.headers)
        secret = _secret(receiver)
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, int(self.clock.now()), entry.body)
        client = self._client or httpx.AsyncClient(verify=receiver.verify_tls)
        try:
            response = await client.post(
                receiver.url, content=entry.body, headers=headers, timeout=receiver.timeout_seconds
            )
        except httpx.HTTPError as e:
            return Attempt("retry", error=f"{type(e).__name__}: {e}")
        finally:
            if self._client is None:
                await client.aclose()
        status = response.status_code
        if 200 <= status < 300:
            return Attempt("delivered")
        text = response.text[:200]
        if status == 429:
            delay = retry_after_seconds(response.headers.get("Retry-After"), self.clock.now())
            return Attempt("retry", delay or 0.0, f"429: {text}")
        if status >= 500:
            return Attempt("retry", error=f"{status}: {text}")
        return Attempt("rejected", error=f"{status}: {text}")

    async def step(self) -> float | None:
        """Try every due entry once; returns seconds until the next one is due."""
        now_ms = round(self.clock.now() * 1000)
        soonest: int | None = None
        for entry in list(self.outbox.pending.values()):
            if entry.next_attempt_ms > now_ms:
                soonest = (
                    entry.next_attempt_ms
                    if soonest is None
                    else min(soonest, entry.next_attempt_ms)
                )
                continue
            entry.attempts += 1
            self.attempts += 1
            outcome = await self.attempt(entry)
            now_ms = round(self.clock.now() * 1000)
            if outcome.result == "delivered":
                self.outbox.finish(entry.id, "delivered")
                continue
            if outcome.result == "rejected":
                log.warning(
                    "notification rejected by %s: %s",
                    entry.receiver,
                    outcome.error,
                    extra={"receiver": entry.receiver, "attempt": entry.attempts},
                )
                self.outbox.finish(entry.id, "rejected", outcome.error)
                continue
            entry.last_error = outcome.error
            if now_ms - entry.created_ms >= self.settings.dead_letter_after_seconds * 1000:
                log.error(
                    "notification to %s dead-lettered after %d attempts: %s",
                    entry.receiver,
                    entry.attempts,
                    outcome.error,
                    extra={"receiver": entry.receiver, "attempt": entry.attempts},
                )
                self.outbox.finish(entry.id, "dead", outcome.error)
                continue
            delay = max(
                outcome.delay_s, backoff_seconds(entry.attempts, self.settings, self._rng.random())
            )
            log.info(
                "delivery to %s failed (attempt %d), retrying in %.1fs: %s",
                entry.receiver,
                entry.attempts,
                delay,
                outcome.error,
                extra={"receiver": entry.receiver, "attempt": entry.attempts},
            )
            entry.next_attempt_ms = now_ms + round(delay * 1000)
            soonest = (
                entry.next_attempt_ms if soonest is None else min(soonest, entry.next_attempt_ms)
            )
        if soonest is None:
            return None
        return max(0.0, (soonest - now_ms) / 1000)

    async def run(self) -> None:
        """Deliver forever; sleeps on the clock between retries."""
        while True:
            self._wake.clear()
            wait = await self.step()
            if wait is None:
                await self._wake.wait()
            elif wait > 0:
                sleeper = asyncio.ensure_future(self.clock.sleep(wait))
                waker = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    waker.cancel()
