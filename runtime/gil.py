"""Sharing the interpreter lock between the event loop and the worker threads.

Rule rounds, model fits, ``/metrics`` renders and store maintenance run in worker threads;
the event loop keeps the Lease, ``/healthz`` and thousands of scrapes going. Every socket
call on the loop releases the interpreter lock, and a busy worker then keeps it for up to
the switch interval before the loop gets it back: at Python's default of 5 ms, a cycle's
thousands of socket calls wait seconds in all, and one loop turn that serves 64 responses
waits up to a third of a second. A shorter interval hands the lock back sooner, at the
cost of more (cheap) switches while threads compete. ``python -m bench.looplag
--switch-interval S`` measures any other value.
"""

from __future__ import annotations

import sys

__all__ = ["LOOP_SWITCH_INTERVAL_S", "favour_event_loop"]

LOOP_SWITCH_INTERVAL_S = 0.001


def favour_event_loop(interval_s: float = LOOP_SWITCH_INTERVAL_S) -> None:
    """Set the interpreter's thread switch interval for a process whose event loop shares
    the interpreter with CPU-bound worker threads."""
    sys.setswitchinterval(interval_s)
