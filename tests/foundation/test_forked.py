"""Work forked off the event loop: its answer, its failures, its cancellation, and a loop
that keeps ticking while the child holds a CPU in one long C call."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge

from runtime.families import Deferred, FamiliesCollector, Family, exposition, exposition_async
from runtime.forked import ForkedWorkFailed, run_forked
from tests.support.processes import ended

ROOT = Path(__file__).resolve().parents[2]


async def test_the_answer_arrives_whole() -> None:
    big = os.urandom(3 << 20) + b"end"
    assert await run_forked(lambda: big) == big
    assert await run_forked(lambda: b"") == b""


def _raises() -> bytes:
    raise ValueError("no such family: foo")


async def test_an_exception_in_the_child_names_itself() -> None:
    with pytest.raises(ForkedWorkFailed, match="ValueError: no such family: foo"):
        await run_forked(_raises)


def _killed() -> bytes:
    os.kill(os.getpid(), signal.SIGKILL)
    return b"never"


async def test_a_child_that_dies_is_reported() -> None:
    with pytest.raises(ForkedWorkFailed, match="died before answering"):
        await run_forked(_killed)


async def test_cancelling_kills_the_child() -> None:
    r, w = os.pipe()

    def hangs() -> bytes:
        os.write(w, str(os.getpid()).encode())
        while True:
            time.sleep(1)

    task = asyncio.ensure_future(run_forked(hangs))
    try:
        pid = int(await asyncio.to_thread(os.read, r, 32))
    finally:
        os.close(r)
        os.close(w)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ended(pid), f"child {pid} still runs after its caller was cancelled"


async def test_the_loop_ticks_while_the_child_computes() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    def one_long_c_call() -> bytes:
        # A single sort holds the interpreter lock throughout: in a thread, the loop would
        # not tick until it ends.
        return str(len(sorted(range(1_000_000, 0, -1)))).encode()

    tick = asyncio.ensure_future(ticker())
    try:
        assert await run_forked(one_long_c_call) == b"1000000"
    finally:
        tick.cancel()
    assert ticks > 100


async def test_metrics_rendered_in_a_child_are_the_same_text() -> None:
    usage = Family("foresight_pod_cpu_usage_cores", "gauge", "CPU used by the pod, in cores.")
    for i in range(5000):
        usage.add(i / 7, namespace=f"ns-{i % 9}", pod=f"p-{i}", node='n"1')

    def where() -> list[Family]:
        family = Family("foresight_rendered_by", "gauge", "The process that rendered.")
        family.add(1.0, pid=str(os.getpid()))
        return [family]

    registry = CollectorRegistry()
    Gauge("foresight_build_info", "Build.", registry=registry).set(1)
    registry.register(FamiliesCollector(lambda: [usage, Deferred(where)]))
    forked = bytes(await exposition_async(registry, in_child=True))
    here = exposition(registry)
    assert f'pid="{os.getpid()}"'.encode() in here
    assert f'pid="{os.getpid()}"'.encode() not in forked
    strip = [line for line in here.splitlines() if b"rendered_by{" not in line]
    assert [line for line in forked.splitlines() if b"rendered_by{" not in line] == strip


async def test_a_fork_the_system_refuses_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # A process limit cannot be lowered for this test alone: os.fork is what stands in.
    def refused() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refused)
    open_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(ForkedWorkFailed, match=r"cannot fork: .*temporarily unavailable"):
        await run_forked(lambda: b"")
    assert len(os.listdir("/proc/self/fd")) == open_before


class _Holder:
    """A thread that holds a lock until released: a fork meanwhile copies the lock held."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._taken, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        with self.lock:
            self._taken.set()
            self._release.wait()

    def __enter__(self) -> threading.Lock:
        self._thread.start()
        self._taken.wait()
        return self.lock

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._thread.join()


async def test_a_child_stuck_on_a_lock_held_at_the_fork_is_killed_at_its_deadline() -> None:
    with _Holder() as held:

        def takes_the_lock() -> bytes:
            with held:  # for ever in the child: the holder is a thread it lacks
                return b"never"

        with pytest.raises(ForkedWorkFailed, match=r"no answer within 0\.3 s"):
            await run_forked(takes_the_lock, deadline_s=0.3)


async def test_a_render_stuck_in_the_child_is_done_again_in_a_thread() -> None:
    loop = asyncio.get_running_loop()
    gave_up = asyncio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "no answer" in record.getMessage():
                loop.call_soon_threadsafe(gave_up.set)

    watch = Watch()
    logging.getLogger("runtime.families").addHandler(watch)
    holder = _Holder()
    try:
        with holder as held:

            def locked() -> list[Family]:
                with held:
                    family = Family("foresight_locked", "gauge", "Made under a lock.")
                    family.add(1.0)
                    return [family]

            registry = CollectorRegistry()
            registry.register(FamiliesCollector(lambda: [Deferred(locked)]))
            render = asyncio.ensure_future(
                exposition_async(registry, in_child=True, child_deadline_s=0.3)
            )
            await gave_up.wait()
        # Released: the thread's render takes the lock and answers.
        assert b"foresight_locked 1.0" in await render
    finally:
        logging.getLogger("runtime.families").removeHandler(watch)


_ORPHAN = """
import asyncio, os, sys, time
from runtime.forked import run_forked

def hangs():
    print(os.getpid(), flush=True)
    while True:
        time.sleep(1)

asyncio.run(run_forked(hangs))
"""


def test_a_child_ends_with_its_killed_parent() -> None:
    """A parent killed mid-work (SIGKILL: nothing of it runs) takes its child along, so
    no render outlives the service holding its stderr."""
    with subprocess.Popen(
        [sys.executable, "-c", _ORPHAN], stdout=subprocess.PIPE, text=True, cwd=ROOT
    ) as parent:
        try:
            assert parent.stdout is not None
            child = int(parent.stdout.readline())
        finally:
            parent.kill()
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, f"the child {child} outlived its killed parent"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    # Reparented to init (or a subreaper), which reaps it: a zombie counts as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


_BLAS_BUSY = """
import asyncio, threading
import numpy as np
from runtime.forked import keep_blas_in_caller, run_forked

keep_blas_in_caller()  # as the service does when it is made
a = np.random.default_rng(0).random((1500, 1500))
busy, stop = threading.Event(), threading.Event()

def products():
    while not stop.is_set():
        a @ a
        busy.set()

async def forks():
    thread = threading.Thread(target=products)
    thread.start()
    busy.wait()
    for _ in range(20):
        assert bytes(await run_forked(lambda: b"ok")) == b"ok"
    stop.set()
    thread.join()

asyncio.run(forks())
print("done")
"""


def test_forks_while_another_thread_multiplies_matrices() -> None:
    """OpenBLAS stops its pool before a fork: with a pool busy in another thread's product
    the fork never returned (and held the interpreter lock). Run apart, so that a hang
    fails this test rather than stopping the suite."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _BLAS_BUSY],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a fork hung while another thread computed a matrix product")
    assert done.stdout.strip() == "done", done.stderr
