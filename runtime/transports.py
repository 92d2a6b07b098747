"""Closed socket transports freed when they close, not by the cyclic collector.

On Python 3.11 a selector socket transport keeps a bound method of itself
(``_read_ready_cb``) after its connection is lost: a reference cycle, so a closed kubelet
connection is freed only by a garbage collection that reaches its generation. The service
freezes what lives past each collection cycle (:func:`runtime.gcpause.freeze_long_lived`),
connections included, and frozen objects are never collected: every connection that closed
after living through a freeze (a keep-alive that ran out, a kubelet that restarted) stayed in
memory for good, with its socket object and buffers. Python 3.12 drops the reference on
``close()`` (CPython issue gh-100348); :func:`free_closed_transports` does the same here,
once the connection is lost, on every path that ends it.
"""

from __future__ import annotations

import functools
import sys
from asyncio import selector_events
from typing import Any

__all__ = ["free_closed_transports"]


@functools.cache
def free_closed_transports() -> None:
    """Have socket transports drop their reference to themselves once their connection is
    lost (a no-op from Python 3.12, which does it itself). Once per process."""
    if sys.version_info >= (3, 12):
        return
    transport: Any = getattr(selector_events, "_SelectorSocketTransport")  # noqa: B009
    lost = transport._call_connection_lost

    @functools.wraps(lost)
    def call_connection_lost(self: Any, exc: BaseException | None) -> None:
        try:
            lost(self, exc)
        finally:
            # Nothing reads from the socket any more: its reader is gone.
            self._read_ready_cb = None

    transport._call_connection_lost = call_connection_lost
