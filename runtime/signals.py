"""Stopping a service loop on SIGINT and SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal

__all__ = ["stop_on_signals"]


def stop_on_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGINT or SIGTERM, from inside the running loop.

    Loop signal handlers exist only in the main thread of a Unix process (NotImplementedError
    elsewhere, RuntimeError off the main thread); there Ctrl-C still interrupts as
    KeyboardInterrupt, which the command line turns into a clean exit.
    """
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
