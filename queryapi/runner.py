"""Where API queries run: on worker threads, a bounded number at once, within a time budget.

The event loop only waits. A query first waits for one of ``max_concurrent_queries`` slots;
the wait counts against its timeout, and a query still waiting when the timeout ends fails
with Prometheus' ``query timed out in query queue``. It then evaluates on a worker thread with
the time left as the engine's budget, and its answer is encoded there too. A slot is given back
when the thread finishes, not when the request gives up, so the limit counts threads really
working.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from promql import Engine
from queryapi.errors import ApiError, translate
from queryapi.settings import QueryApiSettings

T = TypeVar("T")


class QueryRunner:
    """Runs work on the query threads under the API's limits."""

    def __init__(self, engine: Engine, settings: QueryApiSettings) -> None:
        self.engine = engine
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.max_concurrent_queries)
        self._executor = ThreadPoolExecutor(
            max_workers=settings.max_concurrent_queries, thread_name_prefix="query-api"
        )

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
            future = loop.run_in_executor(
                self._executor, work, max(deadline - time.monotonic(), 1e-3)
            )
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

    def _finished(self, future: asyncio.Future[Any]) -> None:
        self._slots.release()
        if not future.cancelled():
            future.exception()  # retrieved: a request that gave up leaves no loop warning

    def close(self) -> None:
        """Stop the query threads (running queries end at their own deadline)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
