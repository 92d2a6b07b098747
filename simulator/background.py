"""A simulated cluster on its own event loop in a background thread.

For synchronous callers (the ``kubernetes`` client, kubectl in a subprocess, benchmarks)
that need a cluster to talk to while they block.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from runtime.clock import Clock, VirtualClock
from simulator.cluster import SimulatedCluster
from simulator.scenario import Scenario

__all__ = ["BackgroundCluster"]

T = TypeVar("T")


class BackgroundCluster:
    """``with BackgroundCluster(scenario) as bg: ...`` serves until the block ends.

    Without a clock, time is a ``VirtualClock`` that moves only when ``advance`` is called,
    so what a test sees depends on what it does, not on how fast the machine is.
    """

    def __init__(
        self, scenario: Scenario, clock: Clock | None = None, run_loop: bool = False, **options: Any
    ) -> None:
        self.clock = clock or VirtualClock(speed=None, autoadvance=False)
        self._scenario = scenario
        self._options = options
        self._run_loop = run_loop
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="simulator", daemon=True
        )
        self.cluster: SimulatedCluster | None = None

    def __enter__(self) -> BackgroundCluster:
        self._thread.start()
        try:
            self.cluster = self.run(self._start())
        except BaseException:
            self._shutdown()
            raise
        return self

    async def _start(self) -> SimulatedCluster:
        cluster = SimulatedCluster(self._scenario, self.clock, **self._options)
        await cluster.start(run_loop=self._run_loop)
        return cluster

    def __exit__(self, *exc: object) -> None:
        if self.cluster is not None:
            self.run(self.cluster.stop())
        if isinstance(self.clock, VirtualClock):
            self.run(self.clock.aclose())
        self._shutdown()

    def _shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the cluster's loop and wait for its result."""
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        """Run a plain function on the cluster's loop (where the store may be touched)."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def advance(self, seconds: float) -> None:
        """Move virtual time forward, stepping the simulation every tick."""
        assert self.cluster is not None
        self.run(self.cluster.advance(seconds))

    @property
    def api_url(self) -> str:
        assert self.cluster is not None
        return self.cluster.api_url
