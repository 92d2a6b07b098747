"""Pausing Python's cyclic garbage collector around bulk work that creates no cycles.

A large cluster keeps millions of objects alive (series ids, label sets, rates). A bulk step
that allocates hundreds of thousands more — a cycle's samples, a ``/metrics`` rendering —
sets off full collections that walk all of them, which cost more than the step itself (at
5,000 nodes: 3.5 s instead of 0.4 s to build the usage families). Reference counting still
frees everything these steps drop; the collector runs again as soon as the step ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]

# The collector's switch is process-wide: pauses in several threads are counted, and the
# last one to end restores what the first one found.
_lock = threading.Lock()
_state = {"depth": 0, "was_enabled": False}


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block (nested blocks, blocks in several threads and
    a disabled GC are respected).

    Only for synchronous code: an ``await`` inside would pause it for everyone else too.
    """
    with _lock:
        if _state["depth"] == 0:
            _state["was_enabled"] = gc.isenabled()
            gc.disable()
        _state["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0 and _state["was_enabled"]:
                gc.enable()
