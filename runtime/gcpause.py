"""Pausing Python's cyclic garbage collector around bulk work that creates no cycles.

A large cluster keeps millions of objects alive (series ids, label sets, rates). A bulk step
that allocates hundreds of thousands more — a cycle's samples, a ``/metrics`` rendering —
sets off full collections that walk all of them, which cost more than the step itself (at
5,000 nodes: 3.5 s instead of 0.4 s to build the usage families). Reference counting still
frees everything these steps drop; the collector runs again as soon as the step ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block (nested blocks and a disabled GC are respected).

    Only for synchronous code: an ``await`` inside would pause it for everyone else too.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
