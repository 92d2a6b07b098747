"""CPU-bound work in a forked child, where it cannot hold the event loop's interpreter lock.

Threads share one interpreter lock. A worker thread inside one long C call (joining a million
strings, a sort, a full garbage collection) keeps the event loop waiting for as long, and the
Lease renewal and ``/healthz`` with it. A child forked for the work has an interpreter of its
own: the loop pays for the fork (copying the page tables: about 25 ms per GiB resident in
small pages, a few ms in all once :mod:`runtime.hugepages` has moved the heap into huge ones)
and for reading the answer from a pipe, in slices, between its other callbacks.

The child sees the parent's memory as it was at the fork (copy on write), so the work may read
whatever the loop owned at that moment, without locks. It must take no lock another thread
could hold: those stay held in the child for ever. The work runs with the cyclic collector
off (it would touch every object and copy its page) and ends with ``os._exit``, so that no
``atexit`` handler, buffered file or event loop of the parent runs twice.

The parent has a hazard of its own: OpenBLAS stops its thread pool before every fork, and a
fork while another thread's matrix product runs on that pool never returns, with the
interpreter lock held, so the whole process stops. A forking process therefore computes BLAS
in the calling thread (:func:`keep_blas_in_caller`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import functools
import gc
import os
import signal
import struct
import sys
import traceback
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["ForkedWorkFailed", "forking_works", "keep_blas_in_caller", "run_forked"]

_HEADER = struct.Struct("<BQ")
_OK, _FAILED = 0, 1
_READ = 1 << 20
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class ForkedWorkFailed(RuntimeError):
    """The child raised (its traceback is the message) or died before answering."""


def forking_works() -> bool:
    """Whether this platform forks (Linux and other POSIX systems)."""
    return hasattr(os, "fork") and sys.platform != "emscripten"


@functools.cache
def keep_blas_in_caller() -> None:
    """Have BLAS libraries compute in the calling thread, with no pool of their own, for
    the rest of the process (see the module's docstring). :func:`run_forked` calls it; a
    service calls it at start, before threads that compute exist."""
    threadpool_limits(1, user_api="blas")


async def run_forked(work: Callable[[], bytes], deadline_s: float | None = None) -> memoryview:
    """``work()`` in a child forked from the calling (event-loop) thread; its bytes, in a
    buffer of their size (big answers are not copied again).

    Raises :class:`ForkedWorkFailed` when the child raises, dies, or has not answered within
    ``deadline_s`` (then it is killed: a child stuck on a lock that a thread of the parent
    held at the fork would wait for ever). Cancelling the caller kills the child."""
    keep_blas_in_caller()
    loop = asyncio.get_running_loop()
    r, w = os.pipe()
    parent = os.getpid()
    with contextlib.suppress(AttributeError, OSError):
        # A larger pipe: fewer wake-ups of the loop for a large answer (Linux only).
        fcntl.fcntl(r, fcntl.F_SETPIPE_SZ, _READ)
    try:
        pid = os.fork()
    except OSError as e:  # EAGAIN, ENOMEM: too many processes, or no memory to map
        os.close(r)
        os.close(w)
        raise ForkedWorkFailed(f"cannot fork: {e}") from e
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        _child(work, r, w, parent)
    os.close(w)
    try:
        os.set_blocking(r, False)
        async with asyncio.timeout(deadline_s):
            answer = await _answer(loop, r)
    except BaseException as e:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        # Reaped in the background: a cancelled caller must not wait for it.
        loop.run_in_executor(None, os.waitpid, pid, 0)
        if isinstance(e, TimeoutError):
            raise ForkedWorkFailed(
                f"the forked child gave no answer within {deadline_s:g} s"
            ) from e
        raise
    finally:
        os.close(r)
    _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    _check_exit(status)
    return answer


def _child(work: Callable[[], bytes], r: int, w: int, parent: int) -> None:  # pragma: no cover
    code = 1
    try:
        os.close(r)
        _die_with_parent(parent)
        gc.disable()
        # Signals are the parent's business: the loop's wake-up descriptor is shared.
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            data = work()
            status = _OK
        except BaseException:
            data = traceback.format_exc().encode("utf-8", "replace")
            status = _FAILED
        _write_all(w, _HEADER.pack(status, len(data)))
        _write_all(w, data)
        code = 0
    finally:
        os._exit(code)


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the child
    """Have the kernel kill this child when the parent ends (Linux): a parent killed while
    the child works would otherwise leave it running, holding the parent's stderr and
    whatever else it inherited."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return
    # The parent may have ended before the request took effect.
    if os.getppid() != parent:
        os._exit(1)


def _write_all(fd: int, data: bytes) -> None:  # pragma: no cover - runs in the child
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def _answer(loop: asyncio.AbstractEventLoop, r: int) -> memoryview:
    """Read the header, then the body into one buffer of its size (no joining of parts).

    The buffer is not zero-filled first, as a ``bytearray`` would be: filling one takes about
    a millisecond per MiB (0.14 s for 150 MiB) in one call on the loop, and a large cluster's
    ``/metrics`` text is tens of megabytes. Its pages are mapped as the reads reach them."""
    header = bytearray(_HEADER.size)
    await _read_into(loop, r, memoryview(header))
    status, size = _HEADER.unpack(header)
    body = np.empty(size, dtype=np.uint8).data
    await _read_into(loop, r, body)
    if status != _OK:
        raise ForkedWorkFailed(f"forked work failed:\n{str(body, 'utf-8', 'replace')}")
    return body


async def _read_into(loop: asyncio.AbstractEventLoop, r: int, view: memoryview) -> None:
    done = 0
    while done < len(view):
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(r, ready.set_result, None)
        try:
            await ready
        finally:
            loop.remove_reader(r)
        # At most _READ bytes per wake-up: a child that keeps the pipe full would otherwise
        # keep the loop reading until the whole answer is in.
        this_time = 0
        while done < len(view) and this_time < _READ:
            try:
                got = os.readv(r, [view[done : done + _READ - this_time]])
            except BlockingIOError:
                break
            if not got:
                raise ForkedWorkFailed("the forked child died before answering")
            done += got
            this_time += got


def _check_exit(status: int) -> None:
    if os.WIFSIGNALED(status):
        raise ForkedWorkFailed(
            f"the forked child was killed by {signal.Signals(os.WTERMSIG(status)).name}"
        )
    if os.waitstatus_to_exitcode(status) != 0:
        raise ForkedWorkFailed(f"the forked child exited with {os.waitstatus_to_exitcode(status)}")
