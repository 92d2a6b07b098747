"""The one source of time for foresight.

Every part that needs "now" or wants to wait receives a :class:`Clock`. Production uses
:class:`RealClock`; the simulator, backtests and tests use :class:`VirtualClock`, which either
runs at a fixed speed factor (a simulated day in a minute) or jumps straight to the next
sleeper as soon as the event loop has nothing else to do.

The clock lives in ``runtime``, the lowest layer: every other part may import it, and it
imports nothing of theirs.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["Clock", "RealClock", "VirtualClock", "in_thread", "sleep_or_stop", "to_datetime"]

_T = TypeVar("_T")


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time in unix seconds, and a way to wait on it."""

    def now(self) -> float:
        """Current time, unix seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait until ``seconds`` have passed on this clock."""
        ...


def to_datetime(ts: float) -> datetime:
    """A timezone-aware UTC datetime for a unix timestamp."""
    return datetime.fromtimestamp(ts, tz=UTC)


async def sleep_or_stop(clock: Clock, seconds: float, stop: asyncio.Event) -> None:
    """Wait ``seconds`` on ``clock``, or less if ``stop`` is set meanwhile."""
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, waiter):
            task.cancel()
        await asyncio.gather(sleeper, waiter, return_exceptions=True)


class RealClock:
    """The system clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that the caller controls.

    ``speed=None`` (the default) makes time stand still until every task is waiting on the
    clock, then jump to the earliest wake-up: work runs as fast as the CPU allows. A number
    makes virtual time run that many times faster than real time, which keeps real network
    I/O meaningful (a simulated cluster served over HTTP, say). ``advance()`` moves time by
    hand; with ``autoadvance=False`` it is the only thing that does.

    Code that waits on real I/O while virtual time runs at full speed should hold the clock
    (``with clock.hold(): ...``) so time does not jump past its timeouts.
    """

    # How many event-loop turns to wait before deciding nothing else is runnable. Each turn
    # lets every ready callback run once; chains of ready work longer than this are rare.
    _IDLE_TURNS = 16

    def __init__(
        self, start: float = 1_700_000_000.0, speed: float | None = None, autoadvance: bool = True
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"clock speed must be > 0, got {speed}")
        self._start = start
        self._virtual = start
        self.speed = speed
        self.autoadvance = autoadvance
        self._real_anchor = time.monotonic()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._holds = 0
        self._driver: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None

    def now(self) -> float:
        if self.speed is None:
            return self._virtual
        return self._virtual + (time.monotonic() - self._real_anchor) * self.speed

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose time has come."""
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        self._set(self.now() + seconds)

    def set_speed(self, speed: float | None) -> None:
        """Change the speed factor without a jump in time."""
        current = self.now()
        self.speed = speed
        self._set(current)

    def _set(self, value: float) -> None:
        self._virtual = value
        self._real_anchor = time.monotonic()
        while self._sleepers and self._sleepers[0][0] <= value:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep full-speed time from jumping while real I/O is in flight."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            if self._wakeup is not None:
                self._wakeup.set()

    async def sleep(self, seconds: float) -> None:
        if self.speed is not None:
            await asyncio.sleep(max(0.0, seconds) / self.speed)
            return
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._virtual + seconds, next(self._seq), fut))
        self._ensure_driver(loop)
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()

    def _ensure_driver(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.autoadvance:
            return
        if self._wakeup is None or self._driver is None or self._driver.done():
            self._wakeup = asyncio.Event()
            self._driver = loop.create_task(self._drive(), name="virtual-clock")
        self._wakeup.set()

    async def _drive(self) -> None:
        assert self._wakeup is not None
        while True:
            self._discard_cancelled()
            if not self._sleepers:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            for _ in range(self._IDLE_TURNS):
                await asyncio.sleep(0)
            self._discard_cancelled()
            if self._holds or not self._sleepers or self.speed is not None:
                if self._holds:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                continue
            self._set(max(self._virtual, self._sleepers[0][0]))

    def _discard_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    async def aclose(self) -> None:
        """Stop the background driver (tests call this to leave no task behind)."""
        if self._driver is not None:
            self._driver.cancel()
            with suppress(asyncio.CancelledError):
                await self._driver
            self._driver = None


async def in_thread(clock: Clock | None, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` in a worker thread, off the event loop. Virtual time waits for it: a
    :class:`VirtualClock` is held while it runs, as for real I/O, so a sleeper's deadline
    never passes while the work that comes before it is still running."""
    hold: AbstractContextManager[None] = (
        clock.hold() if isinstance(clock, VirtualClock) else nullcontext()
    )
    with hold:
        return await asyncio.to_thread(fn, *args)
