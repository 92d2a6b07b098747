"""Traces replayed in worker processes: one function over many traces, results in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

__all__ = ["in_this_process", "map_traces"]

T = TypeVar("T")


def in_this_process(paths: Sequence[Path], jobs: int) -> bool:
    """Whether :func:`map_traces` calls its function here (then it need not be picklable)."""
    return jobs <= 1 or len(paths) <= 1


def map_traces(fn: Callable[[Path], T], paths: Sequence[Path], jobs: int) -> Iterator[T]:
    """``fn`` over ``paths`` in their order, ``jobs`` at a time in worker processes (in this
    one for a single job or trace). ``fn`` must be picklable: a module-level function or a
    ``functools.partial`` of one. Workers know what importing the project registers; a
    forecaster registered at run time reaches them only where processes fork (Linux before
    Python 3.14): elsewhere, replay such a model with ``jobs`` 1. A worker that dies (killed
    for memory, say) raises ``BrokenProcessPool`` here."""
    if in_this_process(paths, jobs):
        yield from map(fn, paths)
        return
    with ProcessPoolExecutor(min(jobs, len(paths))) as pool:
        yield from pool.map(fn, paths)
