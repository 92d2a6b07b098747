"""Counting the turns of a running event loop, for tests of what happens per turn."""

from __future__ import annotations

import asyncio


class Turns:
    """Counts the turns of the running loop: a callback that schedules itself again runs
    once per turn."""

    def __init__(self) -> None:
        self.n = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.n += 1
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()
