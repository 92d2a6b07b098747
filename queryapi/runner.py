"""Where API queries run: on worker threads, a bounded number at once, within a time budget.

The event loop only waits. A query first waits for one of ``max_concurrent_queries`` slots;
the wait counts against its timeout, and a query still waiting when the timeout ends fails
with Prometheus' ``query timed out in query queue``. It then evaluates on a worker thread with
the time left as the engine's budget, and its answer is encoded there too. A slot is given back
when the thread finishes, not when the request gives up, so the limit counts threads really
working.

On its thread a query also waits for its turn (:class:`Turns`): the interpreter runs one
thread's Python at a time, so queries evaluated together only slow each other down (a
dashboard's refresh of 147 queries took a third more CPU time over four threads than over
one) and delay the event loop. A query starts when none runs, or when every one running has
run for ``PATIENCE_SECONDS``: a long query delays the others by that much at most.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from promql import Engine
from queryapi.errors import ApiError, translate
from queryapi.settings import QueryApiSettings

T = TypeVar("T")
PATIENCE_SECONDS = 0.2


class Turns:
    """Queries' turns on the interpreter: :meth:`take` one, :meth:`give_back` it."""

    def __init__(self, patience: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.patience = patience
        self._clock = clock
        self._cond = threading.Condition()
        self._started: dict[int, float] = {}  # turn → when it began
        self._taken = 0

    def wait(self, now: float) -> float:
        """How long a query arriving at ``now`` must wait before asking again (0: it may
        start)."""
        if not self._started:
            return 0.0
        return max(0.0, max(self._started.values()) + self.patience - now)

    def take(self, deadline: float) -> int:
        """A turn, once one is due; :class:`ApiError` if ``deadline`` comes first."""
        with self._cond:
            while True:
                now = self._clock()
                wait = self.wait(now)
                if wait <= 0:
                    self._taken += 1
                    self._started[self._taken] = now
                    return self._taken
                if now >= deadline:
                    raise ApiError("timeout", "query timed out in query queue")
                self._cond.wait(min(wait, deadline - now))

    def give_back(self, turn: int) -> None:
        """End a turn; the next query waiting starts."""
        with self._cond:
            del self._started[turn]
            self._cond.notify()


class QueryRunner:
    """Runs work on the query threads under the API's limits."""

    def __init__(self, engine: Engine, settings: QueryApiSettings) -> None:
        self.engine = engine
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.max_concurrent_queries)
        self._executor = ThreadPoolExecutor(
            max_workers=settings.max_concurrent_queries, thread_name_prefix="query-api"
        )
        self.turns = Turns(PATIENCE_SECONDS)

    def budget(self, requested_ms: int | None) -> float:
        """Seconds a request may take: the setting, or less when the request asks for less."""
        limit = self.settings.timeout_seconds
        if requested_ms is not None and requested_ms > 0:
            limit = min(limit, requested_ms / 1000)
        return limit

    def engine_for(self, seconds: float) -> Engine:
        """The engine with the API's sample limit and ``seconds`` of time budget."""
        settings = self.engine.settings.model_copy(
            update={"timeout_seconds": max(seconds, 1e-3), "max_samples": self.settings.max_samples}
        )
        return self.engine.with_settings(settings)

    async def run(self, work: Callable[[float], T], seconds: float) -> T:
        """``work(seconds_left)`` on a query thread once a slot is free; errors come back as
        :class:`ApiError`."""
        deadline = time.monotonic() + seconds
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=seconds)
        except TimeoutError:
            raise ApiError("timeout", "query timed out in query queue") from None
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._executor, self._in_turn, work, deadline)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._finished)
        try:
            return await asyncio.shield(future)
        except ApiError:
            raise
        except Exception as e:
            raise translate(e) from e

    def _in_turn(self, work: Callable[[float], T], deadline: float) -> T:
        turn = self.turns.take(deadline)
        try:
            return work(max(deadline - time.monotonic(), 1e-3))
        finally:
            self.turns.give_back(turn)

    def _finished(self, future: asyncio.Future[Any]) -> None:
        self._slots.release()
        if not future.cancelled():
            future.exception()  # retrieved: a request that gave up leaves no loop warning

    def close(self) -> None:
        """Stop the query threads (running queries end at their own deadline)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
