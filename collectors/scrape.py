"""Fetching many HTTP metric endpoints at once: bounded, staggered, capped, backed off.

Every failure is reduced to one reason from :data:`REASONS` at a single place
(:func:`classify`), counted in :class:`ScrapeHealth`, logged once per target per cycle, and
puts the target in exponential backoff (honouring ``Retry-After``). A scrape never raises.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from collectors.transport import ResponseTooLarge, ScrapeClient, charset_of
from runtime.backoff import Backoff, retry_after_seconds
from runtime.clock import Clock
from runtime.gil import PerTurn

log = logging.getLogger(__name__)

REASONS = (
    "timeout",
    "connect",
    "tls",
    "protocol",
    "unauthorized",
    "forbidden",
    "not_found",
    "throttled",
    "server_error",
    "http_error",
    "too_large",
    "parse_error",
    "backoff",
)

# Fetches started per turn of the event loop, at most: each start's socket calls wait for the
# interpreter lock while a worker thread computes (see runtime.gil), and a turn that started
# all the slots of a cycle at once (64) held every other task of the loop that long.
STARTS_PER_TURN = 8
# Scrape tasks created per turn of the event loop, at most.
TASKS_PER_TURN = 64

__all__ = [
    "REASONS",
    "STARTS_PER_TURN",
    "ResponseTooLarge",
    "ScrapeHealth",
    "ScrapeOutcome",
    "ScrapeTarget",
    "Scraper",
    "classify",
]


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint: a key the caller knows it by (node or pod), a URL and extra headers."""

    key: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class ScrapeOutcome:
    """The body of a successful scrape (decoded, or as the bytes it came in when the caller
    asked for them: ``data``), or the reason it failed."""

    target: ScrapeTarget
    started_ms: int
    duration_s: float
    body: str | None = None
    data: bytes | None = None
    reason: str | None = None
    detail: str = ""


@dataclass
class _Failing:
    """A target that keeps failing: how many times in a row, and when to try it again."""

    failures: int = 0
    until: float = 0.0


@dataclass
class ScrapeHealth:
    """Counters of one job (``kubelet``, ``pod``): exported on /metrics by the collectors."""

    job: str
    attempts: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    up: dict[str, bool] = field(default_factory=dict)
    last_success_s: dict[str, float] = field(default_factory=dict)
    last_duration_s: dict[str, float] = field(default_factory=dict)
    cycle_duration_s: float = 0.0
    samples_rejected: dict[str, int] = field(default_factory=dict)

    def count_error(self, reason: str, n: int = 1) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + n

    def count_rejected(self, reason: str, n: int = 1) -> None:
        self.samples_rejected[reason] = self.samples_rejected.get(reason, 0) + n

    def forget(self, keys: set[str]) -> None:
        """Drop per-target state of targets that are gone."""
        for table in (self.up, self.last_success_s, self.last_duration_s):
            for key in keys:
                table.pop(key, None)


def classify(error: BaseException) -> tuple[str, str]:
    """The reason a scrape failed, and a short detail for the log."""
    if isinstance(error, ResponseTooLarge):
        return "too_large", str(error)
    if isinstance(error, httpx.HTTPStatusError):
        code = error.response.status_code
        reason = {401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "throttled"}.get(
            code, "server_error" if code >= 500 else "http_error"
        )
        return reason, f"HTTP {code}"
    if isinstance(error, httpx.TimeoutException):
        return "timeout", type(error).__name__
    if isinstance(error, httpx.ConnectError):
        if _caused_by_tls(error):
            return "tls", str(error)[:200]
        return "connect", str(error)[:200]
    if isinstance(
        error, (httpx.RemoteProtocolError, httpx.LocalProtocolError, httpx.DecodingError)
    ):
        return "protocol", str(error)[:200]
    if isinstance(error, ssl.SSLError):
        return "tls", str(error)[:200]
    if isinstance(error, httpx.TransportError | httpx.InvalidURL | httpx.UnsupportedProtocol):
        return "connect", f"{type(error).__name__}: {str(error)[:200]}"
    return "http_error", f"{type(error).__name__}: {str(error)[:200]}"


def _caused_by_tls(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in type(seen).__name__:
            return True
        seen = seen.__cause__ or seen.__context__
    return "certificate" in str(error).lower() or "ssl" in str(error).lower()


class Scraper:
    """Scrapes targets with one shared HTTP client; keeps per-target backoff between cycles."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        clock: Clock,
        health: ScrapeHealth,
        *,
        concurrency: int,
        timeout_s: float,
        stagger_s: float,
        max_bytes: int,
        backoff_initial_s: float,
        backoff_max_s: float,
        starts_per_turn: int = STARTS_PER_TURN,
    ) -> None:
        self._client = client
        self._clock = clock
        self.health = health
        self._semaphore = asyncio.Semaphore(concurrency)
        self._timeout_s = timeout_s
        self._stagger_s = stagger_s
        self._max_bytes = max_bytes
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._failing: dict[str, _Failing] = {}
        self._starts = PerTurn(starts_per_turn)

    async def scrape_all(self, targets: Sequence[ScrapeTarget]) -> list[ScrapeOutcome]:
        """Scrape every target once (those in backoff are skipped and reported as such)."""
        started = time.perf_counter()
        n = len(targets)
        tasks: list[asyncio.Task[ScrapeOutcome]] = []
        async with asyncio.TaskGroup() as group:
            for i, t in enumerate(targets):
                if i and not i % TASKS_PER_TURN:
                    # A task's first step runs in the next turn: a thousand of them in one
                    # turn took it tens of milliseconds of CPU.
                    await asyncio.sleep(0)
                delay = i * self._stagger_s / n
                tasks.append(group.create_task(self._scrape_staggered(t, delay)))
        outcomes = [task.result() for task in tasks]
        self.health.cycle_duration_s = time.perf_counter() - started
        self.forget_others({t.key for t in targets})
        return outcomes

    def forget_others(self, live: set[str]) -> None:
        """Drop the backoff and health of every target not in ``live`` (deleted nodes, say:
        a node that comes back under the same name starts afresh)."""
        for key in set(self._failing) - live:
            del self._failing[key]
        self.health.forget(set(self.health.up) - live)

    async def _scrape_staggered(self, target: ScrapeTarget, delay: float) -> ScrapeOutcome:
        if delay:
            await self._clock.sleep(delay)
        return await self.scrape(target)

    async def scrape(self, target: ScrapeTarget, *, decode: bool = True) -> ScrapeOutcome:
        """One scrape; failures come back as an outcome with a reason, never as an exception.

        ``decode=False`` leaves the body in ``data`` as it came: a parser of bytes spares
        decoding megabytes it mostly skips (and a fresh string of that size per scrape)."""
        now = self._clock.now()
        state = self._failing.get(target.key)
        if state is not None and now < state.until:
            self.health.count_error("backoff")
            self.health.up[target.key] = False
            return ScrapeOutcome(target, int(now * 1000), 0.0, reason="backoff")
        async with self._semaphore:
            await self._starts.wait()
            started_ms = int(self._clock.now() * 1000)
            t0 = time.perf_counter()
            self.health.attempts += 1
            try:
                # A deadline on this task, not wait_for's: no task of its own per fetch.
                async with asyncio.timeout(self._timeout_s):
                    body, content_type = await self._fetch(target)
            except TimeoutError:
                outcome = self._failed(target, started_ms, t0, "timeout", "no answer in time", None)
            except Exception as e:  # every failure is classified in one place
                reason, detail = classify(e)
                headers = e.response.headers if isinstance(e, httpx.HTTPStatusError) else None
                outcome = self._failed(target, started_ms, t0, reason, detail, headers)
            else:
                # Success is the caller's to record (:meth:`succeeded`) once the body parsed:
                # a target answering garbage is down, and its backoff keeps growing.
                outcome = ScrapeOutcome(target, started_ms, time.perf_counter() - t0)
                if decode:
                    outcome.body = body.decode(charset_of(content_type), errors="replace")
                else:
                    outcome.data = body
        return outcome

    async def _fetch(self, target: ScrapeTarget) -> tuple[bytes, str | None]:
        """The body and its Content-Type."""
        if isinstance(self._client, ScrapeClient):
            return await self._client.get_body(
                target.url, target.headers, self._timeout_s, self._max_bytes
            )
        chunks: list[bytes] = []
        size = 0
        async with self._client.stream(
            "GET", target.url, headers=dict(target.headers), timeout=self._timeout_s
        ) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise ResponseTooLarge(f"body larger than {self._max_bytes} bytes")
                chunks.append(chunk)
            content_type = response.headers.get("Content-Type")
        return b"".join(chunks), content_type

    def succeeded(self, outcome: ScrapeOutcome) -> None:
        """Record a fetched body as a success (it parsed): the target is up, out of backoff."""
        target = outcome.target
        self._failing.pop(target.key, None)
        self.health.up[target.key] = True
        self.health.last_success_s[target.key] = self._clock.now()
        self.health.last_duration_s[target.key] = outcome.duration_s

    def fail(self, outcome: ScrapeOutcome, reason: str, detail: str) -> None:
        """Mark a fetched body as failed afterwards (it did not parse, say)."""
        self._failed(outcome.target, outcome.started_ms, None, reason, detail, None, outcome)

    def _failed(
        self,
        target: ScrapeTarget,
        started_ms: int,
        t0: float | None,
        reason: str,
        detail: str,
        headers: Mapping[str, str] | None,
        outcome: ScrapeOutcome | None = None,
    ) -> ScrapeOutcome:
        now = self._clock.now()
        state = self._failing.setdefault(target.key, _Failing())
        state.failures += 1
        retry_after = (
            retry_after_seconds(headers.get("retry-after"), now) if headers is not None else None
        )
        pause = self._backoff.delay(state.failures, retry_after)
        state.until = now + pause
        self.health.count_error(reason)
        self.health.up[target.key] = False
        log.warning(
            "scrape of %s failed: %s (%s); attempt %d, next try in %.0f s",
            target.url,
            reason,
            detail,
            state.failures,
            pause,
            extra={"job": self.health.job, "target": target.key},
        )
        if outcome is None:
            outcome = ScrapeOutcome(
                target, started_ms, time.perf_counter() - t0 if t0 is not None else 0.0
            )
        outcome.body = outcome.data = None
        outcome.reason = reason
        outcome.detail = detail
        return outcome
