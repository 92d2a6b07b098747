"""Stopping a service loop on SIGINT and SIGTERM; reloading on SIGHUP."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

__all__ = ["stop_on_signals"]


def stop_on_signals(stop: asyncio.Event, reload: Callable[[], None] | None = None) -> None:
    """Set ``stop`` on SIGINT or SIGTERM, and call ``reload`` on SIGHUP, from inside the
    running loop. Without ``reload``, SIGHUP is ignored: its default action would end the
    process, and a reload signal must never kill a service.

    Loop signal handlers exist only in the main thread of a Unix process (NotImplementedError
    elsewhere, RuntimeError off the main thread); there Ctrl-C still interrupts as
    KeyboardInterrupt, which the command line turns into a clean exit.
    """
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, reload or (lambda: None))
