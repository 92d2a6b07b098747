"""Holding off full garbage collections around bulk work.

A large cluster keeps millions of objects alive (series ids, label sets, rates). A bulk step
that allocates hundreds of thousands more — a cycle's samples, a ``/metrics`` rendering, a
rule round — sets off full collections that walk all of them, which cost more than the step
itself (at 5,000 nodes: 3.5 s instead of 0.4 s to build the usage families), and a full
collection stops every thread, the event loop's too.

Inside :func:`paused_gc` only the full collections wait; the young generations are still
collected every few hundred allocations, as usual. Switching the collector off instead
(what this module did first) let every thread's survivors pile up in the young generation
while a rule round lasted, seconds; the first collection after it, or the explicit one of
:func:`freeze_long_lived`, then walked all of them at once: 0.2 to 0.7 s of CPU with every
thread stopped (``python -m bench.looplag --why``). Young collections stay small, so each
object is walked a few times in pauses of a millisecond or less.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["StaysTracked", "call_paused", "freeze_long_lived", "paused_gc"]

_T = TypeVar("_T")
_K = TypeVar("_K")
_V = TypeVar("_V")

# A full collection runs once this many young (generation 1) collections have run since the
# last one: never, within a pause.
_NO_FULL_COLLECTION = 2**30

# The thresholds are process-wide: pauses in several threads are counted, and the last one
# to end restores what the first one found.
_lock = threading.Lock()
_state: dict[str, Any] = {"depth": 0, "thresholds": gc.get_threshold()}


@contextmanager
def paused_gc() -> Iterator[None]:
    """No full collection inside the block (nested blocks and blocks in several threads are
    counted; the young generations are collected as usual).

    Only for synchronous code: an ``await`` inside would pause it for everyone else too.
    """
    with _lock:
        if _state["depth"] == 0:
            young, older, _ = _state["thresholds"] = gc.get_threshold()
            gc.set_threshold(young, older, _NO_FULL_COLLECTION)
        _state["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                gc.set_threshold(*_state["thresholds"])


def call_paused(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` inside :func:`paused_gc`: for slow work handed to a worker thread (a
    rule round, a large query), whose hundreds of thousands of objects would otherwise set
    off full collections that stop the event loop's thread too."""
    with paused_gc():
        return fn(*args)


def freeze_long_lived() -> None:
    """Exclude every object alive now from future collections (``gc.freeze``), after
    collecting the young generations' garbage.

    A full collection walks every tracked object while every thread waits: at a large
    cluster's millions of label sets and index entries that is hundreds of milliseconds of
    stalled event loop, however well the slow work was moved to threads. Called after every
    collection cycle, so that a full collection walks only what the last cycle made, not what
    earlier cycles left alive for good (the kubelet collector's last points, alerts, caches:
    at 1,000 nodes, 0.1 to 0.3 s of CPU per full collection, every cycle or two). Reference
    counting frees frozen objects as usual; only cyclic garbage among them is never
    collected. The service makes almost none (:mod:`bench.looplag` finds no unreachable
    object in its full collections), and the young generations are collected just before,
    so what could leak is a cycle that lived through two young collections first.
    """
    gc.collect(1)
    gc.freeze()


class StaysTracked(dict[_K, _V]):
    """A dict that the cyclic collector tracks from birth to death, so that
    :func:`freeze_long_lived` takes it out of every collection for good.

    A plain dict whose keys and values hold nothing the collector tracks (label tuples of
    strings, once a collection has looked at them, and ints) is untracked by the next full
    collection that finds it unfrozen; the first tuple still tracked put into it later
    tracks it again, in the youngest generation, where every young collection walks all
    its entries until it is old or frozen. At a store's 600,000 series that is 50 to 60 ms
    of CPU per young collection with every thread stopped, after each batch of new series.
    Only dicts of exactly this type are ever untracked.
    """

    __slots__ = ()
