"""Sharing the interpreter lock between the event loop and the worker threads.

Rule rounds, model fits, ``/metrics`` renders and store maintenance run in worker threads;
the event loop keeps the Lease, ``/healthz`` and thousands of scrapes going. Every socket
call on the loop releases the interpreter lock, and a busy worker then keeps it for up to
the switch interval before the loop gets it back: at Python's default of 5 ms, a cycle's
thousands of socket calls wait seconds in all, and one loop turn that serves 64 responses
waits up to a third of a second. A shorter interval hands the lock back sooner, at the
cost of more (cheap) switches while threads compete. ``python -m bench.looplag
--switch-interval S`` measures any other value.

Whatever the interval, a turn of the loop lasts as long as the socket calls its callbacks
make, each waiting for the lock in turn: a burst of work started at once (a thousand
scrapes) makes one long turn, and every timer of the loop (a Lease renewal) waits for its
end. :class:`PerTurn` spreads such a burst over many short turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")

__all__ = [
    "DROP_SLICE",
    "LOOP_SWITCH_INTERVAL_S",
    "FreedGradually",
    "PerTurn",
    "drop_gradually",
    "favour_event_loop",
]

LOOP_SWITCH_INTERVAL_S = 0.001
# Items :func:`drop_gradually` frees per step: a few milliseconds of deallocation at most.
DROP_SLICE = 4096


def favour_event_loop(interval_s: float = LOOP_SWITCH_INTERVAL_S) -> None:
    """Set the interpreter's thread switch interval for a process whose event loop shares
    the interpreter with CPU-bound worker threads."""
    sys.setswitchinterval(interval_s)


def drop_gradually(items: list[Any], per_slice: int = DROP_SLICE) -> None:
    """Empty ``items`` a slice at a time, from the end, so that a worker thread lets the
    event loop have the interpreter lock between slices.

    The last reference to a large structure going away frees all of it in one C-level
    cascade that no thread switch can split: a collection cycle's families (270,000 samples,
    each a tuple and a label dict, at 1,000 nodes) kept the loop waiting 0.2-0.25 s of CPU
    when the recording thread returned (``python -m bench.looplag --steps``)."""
    while items:
        del items[-per_slice:]


class FreedGradually(dict[_K, _V]):
    """A dict whose values, once the dict itself is dropped, are freed ``per_slice`` at a
    time in a worker thread, whichever thread let go of it last.

    For a snapshot handed to several holders (the collection cycle, a ``/metrics`` render):
    whichever drops it last would otherwise free every value in one cascade, on the event
    loop if that is where it lets go. A 1,000-node cycle's node views (a pod and a
    container dict each) held the loop 22-40 ms so (``python -m bench.looplag --steps``)."""

    def __init__(self, items: Mapping[_K, _V], per_slice: int) -> None:
        super().__init__(items)
        self._per_slice = per_slice
        self._pid = os.getpid()

    def __del__(self) -> None:
        if os.getpid() != self._pid:
            # In a forked child: no worker thread, and the executor's lock may have been
            # held by a thread of the parent at the fork.
            return
        values = list(self.values())
        self.clear()
        # RuntimeError: the interpreter is shutting down and starts no more threads.
        with contextlib.suppress(RuntimeError):
            _freer().submit(drop_gradually, values, self._per_slice)


@functools.cache
def _freer() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="freer")


class PerTurn:
    """Lets at most ``limit`` callers of :meth:`wait` through per turn of the event loop;
    the others wait, first come first served, for the next turns.

    A turn runs the callbacks that were ready when it began; what they make ready runs in
    the next one. So the callers let through in one turn resume together in the next, and
    no turn resumes more than ``limit`` of them (twice that when callers also arrive while
    nobody waits)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"PerTurn: limit must be at least 1, not {limit}")
        self._limit = limit
        self._passed = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._turn: asyncio.Handle | None = None

    async def wait(self) -> None:
        """Return in this turn if it has room, else in a later one."""
        if self._passed < self._limit and not self._waiters:
            self._passed += 1
            self._next_turn_soon()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._next_turn_soon()
        await waiter

    def _next_turn_soon(self) -> None:
        if self._turn is None:
            self._turn = asyncio.get_running_loop().call_soon(self._new_turn)

    def _new_turn(self) -> None:
        self._turn = None
        self._passed = 0
        waiters = self._waiters
        while waiters and self._passed < self._limit:
            waiter = waiters.popleft()
            # A cancelled waiter gives its place to the next.
            if not waiter.done():
                waiter.set_result(None)
                self._passed += 1
        if waiters or self._passed:
            self._next_turn_soon()
