"""The service's heap in huge pages, so that forking it stalls the event loop for less.

A ``/metrics`` render forks the service (:mod:`runtime.forked`), and the fork copies the page
table entry of every resident page while the calling thread holds the interpreter lock. In
4 KiB pages that is about 25 ms per GiB resident (the fork of a 2.2 GiB service at 1,000
nodes stalled the loop 48-63 ms); in 2 MiB pages it is one entry where there were 512.
numpy asks for huge pages for its large arrays, but Python's object arenas (1 MiB mappings,
which the kernel merges into large areas) and the C heap do not, and the kernel's usual mode,
``madvise``, gives huge pages only where asked.

:func:`collapse_heap` asks the kernel (``MADV_COLLAPSE``, Linux 6.1 and later) to rebuild
the densely resident anonymous mappings in huge pages. It runs after each collection cycle,
in a worker thread: ctypes releases the interpreter lock for the call, and the copying is
kernel time. A page written while a forked child lives is split back into small pages (copy
on write works per 4 KiB page), so each cycle collapses again what the last one split.

Only mappings resident over at least :data:`MIN_DENSITY` of their size are collapsed:
collapsing fills a huge page's absent small pages with zeroes, and a thread's stack, 8 MiB
reserved and a few KiB touched, would become 8 MiB resident. No ``MADV_HUGEPAGE`` hint is
set, so page faults keep taking small pages and never wait for the kernel to compact memory
for a huge one.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import functools
import logging
import mmap
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HUGE_PAGE",
    "MIN_DENSITY",
    "Collapsed",
    "collapse_heap",
    "collapse_heap_off_loop",
    "dense_ranges",
    "supported",
]

log = logging.getLogger(__name__)

HUGE_PAGE = 2 << 20
MIN_DENSITY = 0.75
_MADV_COLLAPSE = 25  # <asm-generic/mman-common.h>, Linux 6.1
_THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")
_MAPPING = re.compile(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)")


@dataclass(frozen=True)
class Collapsed:
    """What one :func:`collapse_heap` did: bytes of dense anonymous memory asked for, how
    many of those requests the kernel refused (pages busy, or no huge page free), and the
    calling thread's CPU time (the kernel's copying, mostly)."""

    requested_bytes: int
    refused: int
    cpu_seconds: float = 0.0


def dense_ranges(smaps: str, min_density: float = MIN_DENSITY) -> list[tuple[int, int]]:
    """``(start, length)`` of the huge-page-aligned part of each private, writable,
    anonymous mapping in ``smaps`` (the text of ``/proc/<pid>/smaps``) that is resident
    over at least ``min_density`` of its size."""
    ranges: list[tuple[int, int]] = []
    mapping: tuple[int, int] | None = None
    for line in smaps.splitlines():
        if (found := _MAPPING.fullmatch(line)) is not None:
            start, end, perms, inode, name = found.groups()
            anonymous = (
                perms.startswith("rw")
                and perms[3] == "p"
                and inode == "0"
                # The C heap is named; a stack is not worth it (see the module's docstring).
                and (not name or name == "[heap]" or name.startswith("[anon:"))
            )
            mapping = (int(start, 16), int(end, 16)) if anonymous else None
        elif mapping is not None and line.startswith("Rss:"):
            start, end = mapping
            mapping = None
            if int(line.split()[1]) * 1024 < min_density * (end - start):
                continue
            lo = -(-start // HUGE_PAGE) * HUGE_PAGE
            hi = end // HUGE_PAGE * HUGE_PAGE
            if hi > lo:
                ranges.append((lo, hi - lo))
    return ranges


def collapse_heap(smaps: Path = Path("/proc/self/smaps")) -> Collapsed:
    """Have the kernel move this process's dense anonymous memory into huge pages. Blocks
    for as long as the copying takes (a first call at a GiB resident: seconds), with the
    interpreter lock released: call it from a worker thread. Does nothing where the kernel
    cannot (:func:`supported`)."""
    if not supported():
        return Collapsed(0, 0)
    started = time.thread_time()
    requested = refused = 0
    for start, length in dense_ranges(smaps.read_text()):
        requested += length
        if _madvise(start, length, _MADV_COLLAPSE) != 0:
            refused += 1
    return Collapsed(requested, refused, time.thread_time() - started)


async def collapse_heap_off_loop() -> Collapsed:
    """:func:`collapse_heap` in a worker thread, as the service runs it after each
    collection cycle. A failure (no ``/proc``) is logged, and leaves small pages."""
    try:
        return await asyncio.to_thread(collapse_heap)
    except OSError as e:
        log.warning("could not move the heap into huge pages: %s", e)
        return Collapsed(0, 0)


@functools.cache
def supported() -> bool:
    """Whether this kernel collapses memory into huge pages on request: Linux 6.1 or later,
    with transparent huge pages not turned off (``never``)."""
    if sys.platform != "linux":
        return False
    try:
        if "[never]" in _THP_MODE.read_text():
            return False
    except OSError:
        return False
    # A probe: a kernel that predates MADV_COLLAPSE answers EINVAL.
    probe = mmap.mmap(-1, 2 * HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        probe.write(b"\1" * len(probe))
        view = (ctypes.c_char * len(probe)).from_buffer(probe)
        try:
            start = -(-ctypes.addressof(view) // HUGE_PAGE) * HUGE_PAGE
            error = _madvise(start, HUGE_PAGE, _MADV_COLLAPSE)
        finally:
            del view
    finally:
        probe.close()
    return error not in (errno.EINVAL, errno.ENOSYS)


def _madvise(start: int, length: int, advice: int) -> int:
    """0, or the errno of ``madvise(2)``."""
    if _libc().madvise(ctypes.c_void_p(start), ctypes.c_size_t(length), advice) == 0:
        return 0
    return ctypes.get_errno()


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.madvise.restype = ctypes.c_int
    return libc
