"""Event-loop lag while the service's slow work runs: ``python -m bench.looplag [--json]``.

One asyncio loop runs what ``foresight run`` runs at the same time, on the virtual clock:

- **collection**: the kubelets of a simulated cluster of ``--nodes`` nodes (30 pods each; in
  a child process, as :mod:`bench.collect` builds it, at ``--kubelets-nice``: they stand for
  other machines, and at the service's priority they took a core from it while they answered
  a cycle) scraped into the store every 15 s, the scrapes' starts spread over ``--stagger``
  seconds as the service spreads them (the virtual clock stands still during a cycle, so
  the stagger's sleeps take real time: :class:`RealSleeps`; ``--stagger 0`` starts them all
  at once);
- **rule rounds**: the kube-prometheus rule groups (as :mod:`bench.alerts` runs them, over
  the synthetic cluster of :mod:`bench.promql` with ``--rule-nodes`` nodes, whose series are
  scraped into the same store and whose rules have run over it from its first scrape), one
  round per 30 s as the alert service runs them (:func:`alerts.service.evaluate_round`);
- **a model refit**: the controller's forecast of one workload refitted on a week of history
  (:meth:`autoscaler.controller.forecasting.KeptForecast.peak_async`, the ``auto`` model);
- **/metrics**: rendered each cycle as the service renders it
  (:func:`runtime.families.exposition_async`, in a forked child as the service does, over
  the collection cycle's families and the cost model's, built by the renderer from the
  cycle's snapshot of a cluster model of the same size, :func:`bench.promapi.cluster_model`);
- **the store's flusher** (:meth:`tsdb.Store.run_flusher`): log writes, sealing, maintenance.

The interpreter's switch interval is the service's (:func:`runtime.gil.favour_event_loop`)
unless ``--switch-interval`` says otherwise. A monitor task asks to sleep 5 ms, over and over,
and records by how much each wake-up came late (a monotonic clock): that lateness is what a
Lease renewal or a ``/healthz`` answer would suffer. The table shows its maximum and 99th
percentile, and how long each part took. Target: maximum lag at most 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures.thread
import functools
import gc
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from alerts.rules.group import EvalContext, written_metrics
from alerts.rules.manager import RuleManager
from alerts.service import evaluate_round
from alerts.settings import RuleSettings
from autoscaler.controller.forecasting import KeptForecast
from autoscaler.cost.exporter import cost_families
from autoscaler.cost.inputs import snapshot_from_cluster
from autoscaler.cost.settings import CostSettings
from autoscaler.forecast.base import Series
from autoscaler.forecast.settings import ForecastSettings
from autoscaler.resource.model import ForecastSpec
from bench.collect import PODS_PER_NODE
from bench.promapi import cluster_model
from bench.promql import (
    ENGINE,
    RULES,
    SCRAPE_MS,
    SCRAPES,
    T0_MS,
    Cluster,
    Scrapes,
    load_groups,
    load_rules,
)
from bench.simulator import bench_scenario
from collectors.cycle import CollectionCycle
from collectors.kubelet import KubeletCollector, NodeEndpoint, kubelet_client
from collectors.scrape import ScrapeHealth, Scraper
from collectors.settings import CollectorSettings
from promql import Engine
from runtime.clock import VirtualClock
from runtime.families import Deferred, FamiliesCollector, Family, exposition_async
from runtime.forked import keep_blas_in_caller
from runtime.gcpause import freeze_long_lived
from runtime.gil import favour_event_loop
from runtime.hugepages import collapse_heap_off_loop
from runtime.transports import free_closed_transports
from simulator.cluster import SimulatedCluster
from tsdb import Store, StoreSettings

TICK_S = 0.005
STALL_S = 0.05
LONG_CALL_S = 0.02
# A fork that takes longer is explained (``--why``): what the other threads did meanwhile.
SLOW_FORK_S = 0.2
# A young generation with more objects than this is looked into (``--why``).
YOUNG_WALK_SEEN = 200_000
# Entries of a young container worth naming (``--why``): every young collection walks them.
YOUNG_BIG = 50_000
ROOT = str(Path(__file__).resolve().parents[1]) + "/"
CYCLE_S = 15
KUBELETS_NICE = 19
# The timed part starts where the rules' thirty minutes of history end.
START_S = (T0_MS + SCRAPES * SCRAPE_MS) / 1000


async def _serve_simulator(nodes: int, conn: Connection) -> None:
    clock = VirtualClock(start=START_S - 60, speed=None, autoadvance=False)
    cluster = SimulatedCluster(bench_scenario(nodes, nodes * PODS_PER_NODE), clock)
    await cluster.start(run_loop=False)
    await cluster.advance(60)
    endpoints = [
        (n.name, (("InternalIP", "127.0.0.1"),), n.port) for n in cluster.kubelets.nodes.values()
    ]
    conn.send({"nodes": endpoints})
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, conn.recv) != "stop":
        await cluster.advance(CYCLE_S)
        conn.send("advanced")
    await cluster.stop()
    await clock.aclose()


class RealSleeps:
    """A clock's time with sleeps of real time: the scraper's stagger elapses while the
    cycle's virtual time stands still (the simulated kubelets answer for that instant)."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _child(nodes: int, nice: int, conn: Connection) -> None:
    os.nice(nice)
    asyncio.run(_serve_simulator(nodes, conn))


class Monitor:
    """Sleeps ``TICK_S`` over and over on the real loop and keeps how late each wake-up was.

    With ``why``, a watchdog thread looks at the loop's thread whenever a wake-up is more than
    ``STALL_S`` late and counts where it is (the innermost frames of foresight's code): what
    holds the loop, or where it waits for the interpreter lock."""

    def __init__(self, why: bool, threads: bool = False) -> None:
        self.lags: list[float] = []
        # With ``threads``: each thread's CPU during every wake-up over ``STALL_S`` late, and
        # where it was just after (what held the interpreter lock, or left the loop no core).
        self._threads = threads
        self.late_threads: list[dict[str, Any]] = []
        self.late_at: list[str] = []
        # With ``threads`` or ``why``: young collections over ``LONG_CALL_S`` of CPU: ms,
        # generation, unreachable objects freed, the thread, where it allocated and (``why``)
        # the young generations' big containers.
        self.young_slow: list[tuple[int, int, int, str, str, str]] = []
        self._young_big = ""
        self._owners: dict[int, str] = {}
        self.worst_at = ""
        self.phase = "idle"
        self.stalls: Counter[str] = Counter()
        self._why = why
        self._last = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._done = threading.Event()
        # Full collections stop every thread; they are timed apart from the loop's own work.
        self.gc_pauses: list[float] = []
        # CPU time of the collecting thread: what a full collection costs on an idle machine.
        self.gc_cpu: list[float] = []
        self._gc_started = (0.0, 0.0)
        # With ``why``: the objects the first full collections walked, and their commonest types.
        self.gc_walked: list[tuple[int, list[tuple[str, int]]]] = []
        # Unreachable objects each full collection found and freed.
        self.gc_collected: list[int] = []
        # Young collections stop every thread too: the longest of each generation (CPU).
        self.young_longest = [0.0, 0.0]
        self.young_count = [0, 0]
        self._young_started = 0.0
        # With ``why``: each stall's samples (how late, and every thread's place), the
        # longest stalls kept.
        self.episodes: list[tuple[float, str, list[str]]] = []
        self._episode: list[str] = []
        # Each wake-up more than ``STALL_S`` late: when it was due and when it came.
        self.late: list[tuple[float, float]] = []

    def _big_young(self, generation: int) -> str:
        """The young generations' containers of over ``YOUNG_BIG`` entries, and what holds
        them: a big dict put back among the young (a plain dict is untracked when all it
        holds is, and tracked again, young, by the first tracked thing put into it) is
        walked whole by every young collection until it is old."""
        big = [
            o
            for g in range(generation + 1)
            for o in gc.get_objects(g)
            if isinstance(o, (dict, list, set)) and len(o) > YOUNG_BIG
        ]
        named = []
        for o in big[:3]:
            owner = self._owners.get(id(o))
            if owner is None and len(self._owners) < 8:
                owner = self._owners[id(o)] = _owner(o, (big,), depth=4)
            named.append(f"{_kind(o)} of {len(o):,} in {owner or '?'}")
        return "; ".join(named)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if generation != 2:
            if phase == "start":
                # A young generation grown large: what it holds, before it is timed. Only
                # then: listing the objects takes a reference to each, and a tuple another
                # thread is still building must have none (CPython's tuple() raises).
                if self._why and gc.get_count()[0] > YOUNG_WALK_SEEN and len(self.gc_walked) < 6:
                    walked = [o for g in range(generation + 1) for o in gc.get_objects(g)]
                    kinds = Counter(_kind(o) for o in walked).most_common(6)
                    top = next(o for o in walked if _kind(o) == kinds[0][0])
                    holder = f"held by {_owner(top, (walked,), depth=6)}"
                    self.gc_walked.append((len(walked), [("young", 0), *kinds, (holder, 1)]))
                    del walked
                self._young_big = self._big_young(generation) if self._why else ""
                self._young_started = time.thread_time()
            else:
                # CPU time: on a loaded machine the wall time says more about the load.
                took = time.thread_time() - self._young_started
                self.young_count[generation] += 1
                self.young_longest[generation] = max(self.young_longest[generation], took)
                if (self._threads or self._why) and took > LONG_CALL_S:
                    self.young_slow.append(
                        (
                            round(took * 1000),
                            generation,
                            info["collected"],
                            threading.current_thread().name,
                            _where(sys._getframe(1)),
                            self._young_big,
                        )
                    )
                if self._why and took > STALL_S / 5:
                    self._episode.append(
                        f"gen{generation} collection {took * 1000:.0f} ms of CPU, "
                        f"{info['collected']:,} unreachable objects freed"
                    )
            return
        if phase == "start":
            if self._why and len(self.gc_walked) < 3:
                # What a full collection walks (counted before it is timed).
                walked = gc.get_objects(2)
                kinds = Counter(type(o).__name__ for o in walked).most_common(6)
                sized = [o for o in walked if isinstance(o, (list, dict, set, tuple, deque))]
                sized.sort(key=len, reverse=True)
                top = sized[:4]
                skip = (walked, sized, top)
                biggest = [(f"{type(o).__name__}@{_owner(o, skip)}", len(o)) for o in top]
                refs = sum(len(o) for o in sized)
                self.gc_walked.append((len(walked), [*kinds, ("references", refs), *biggest]))
                del walked, sized, top, skip
            self._gc_started = (time.perf_counter(), time.thread_time())
        else:
            self.gc_pauses.append(time.perf_counter() - self._gc_started[0])
            self.gc_cpu.append(time.thread_time() - self._gc_started[1])
            self.gc_collected.append(info["collected"])

    async def run(self) -> None:
        self._loop_thread = threading.get_ident()
        watchdog = threading.Thread(target=self._watch, daemon=True)
        if self._why:
            watchdog.start()
        gc.callbacks.append(self._gc)
        cpu = _threads_cpu() if self._threads else {}
        try:
            while True:
                asked = self._last = time.monotonic()
                await asyncio.sleep(TICK_S)
                woke = time.monotonic()
                lag = woke - asked - TICK_S
                if not self.lags or lag > max(self.lags):
                    self.worst_at = self.phase
                if lag > STALL_S:
                    self.late.append((asked + TICK_S, woke))
                    if self._threads:
                        self.late_at.append(f"due {asked + TICK_S:.3f}, woke {woke:.3f}")
                if self._threads:
                    now = _threads_cpu()
                    if lag > STALL_S:
                        self._note_threads(lag, cpu, now)
                    cpu = now
                self.lags.append(lag)
        finally:
            gc.callbacks.remove(self._gc)
            self._done.set()

    def _note_threads(self, lag: float, before: dict[int, float], after: dict[int, float]) -> None:
        # Dropped before returning: the dict holds this very frame, and a cycle through it
        # would keep every other thread's frame (a recording's families) until a collection.
        frames = sys._current_frames()
        names = {t.ident: t.name for t in threading.enumerate()}
        used = {
            ident: (cpu - before[ident]) * 1000 for ident, cpu in after.items() if ident in before
        }
        self.late_threads.append(
            {
                "ms": lag * 1000,
                "at": self.late_at[-1] if self.late_at else "",
                "load": os.getloadavg()[0],
                "threads": [
                    (
                        "loop" if ident == self._loop_thread else str(names.get(ident, ident)),
                        round(ms, 1),
                        _where(frames.get(ident), innermost=True) + _last_work.get(ident, ""),
                    )
                    for ident, ms in sorted(used.items(), key=lambda kv: -kv[1])
                    if ms >= 1 or ident == self._loop_thread
                ],
            }
        )
        del frames

    def _watch(self) -> None:
        last = self._last
        while not self._done.wait(0.01):
            late = time.monotonic() - self._last
            if last != self._last and self._episode:
                self._close_episode(last)
            last = self._last
            if late < TICK_S + STALL_S:
                continue
            frames = sys._current_frames()
            self.stalls[_where(frames.get(self._loop_thread))] += 1
            me = threading.get_ident()
            names = {t.ident: t.name for t in threading.enumerate()}
            places = [
                f"{'loop' if ident == self._loop_thread else names.get(ident, ident)}: "
                f"{_where(frame, innermost=True)}"
                for ident, frame in frames.items()
                if ident != me
            ]
            self._episode.append(f"+{late * 1000:.0f} ms | " + " || ".join(places))

    def _close_episode(self, started: float) -> None:
        lag = self._last - started
        self.episodes.append((lag, self.phase, self._episode))
        self.episodes.sort(key=lambda e: e[0], reverse=True)
        del self.episodes[3:]
        self._episode = []


class LongCalls:
    """C calls that took more than ``LONG_CALL_S`` of their thread's CPU time, by function
    and the foresight line that made them. Unless it lets go of the interpreter lock (numpy's
    loops and I/O do, most builtins do not), a C call holds it throughout, and the loop waits
    behind it; CPU time makes the figure what an idle machine would show. A profiling hook
    on every call: the run is slower, the C calls' own times are not."""

    def __init__(self) -> None:
        self.total_ms: Counter[str] = Counter()
        self.longest_ms: dict[str, float] = {}
        self._local = threading.local()

    def install(self) -> None:
        sys.setprofile(self._hook)
        threading.setprofile(self._hook)

    def remove(self) -> None:
        sys.setprofile(None)
        threading.setprofile(None)

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        # Each open C call: when it started, and whether Python code ran inside it (a
        # generator consumed by a join, a callback, a collection's callbacks): such a call
        # lets go of the lock as that code runs, so it is not counted.
        stack = self._local.__dict__.setdefault("stack", [])
        if event == "c_call":
            stack.append([time.thread_time(), True])
        elif event == "call":
            if stack:
                stack[-1][1] = False
        elif event in ("c_return", "c_exception"):
            if not stack:
                return
            started, pure = stack.pop()
            took = time.thread_time() - started
            if pure and took > LONG_CALL_S:
                module = getattr(arg, "__module__", None) or type(arg).__name__
                name = f"{module}.{getattr(arg, '__qualname__', '?')} < {_where(frame)}"
                self.total_ms[name] += took * 1000
                self.longest_ms[name] = max(self.longest_ms.get(name, 0.0), took * 1000)


class SlowSteps:
    """Steps of the event loop (one callback, or one step of a task up to its next ``await``)
    that took more than ``LONG_CALL_S`` of the loop thread's CPU: the loop's own work that
    makes it late, whatever other threads do. CPU time, so that a loaded machine shows what an
    idle one would; with the part of it spent in the kernel and the page faults taken (copies
    of pages written after a fork, first touches of new memory), which user time alone hides."""

    def __init__(self) -> None:
        self.longest_ms: dict[str, float] = {}
        self.count: Counter[str] = Counter()
        # Of each name's longest step: kernel ms, minor page faults, involuntary switches.
        self.kernel: dict[str, tuple[float, int, int]] = {}
        # Steps whose wall time was over ``LONG_CALL_S``: start, end (monotonic), CPU, name.
        # Wall time beyond the CPU is waiting: for the interpreter lock, or for a core.
        self.walls: list[tuple[float, float, float, str]] = []
        # Off once the measurement ends: what the benchmark does after it is not the loop's.
        self.active = True
        self._original = asyncio.events.Handle._run

    def install(self) -> None:
        original = self._original
        record = self._record
        usage = resource.getrusage
        thread = resource.RUSAGE_THREAD

        def timed(handle: asyncio.events.Handle) -> None:
            task = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
            # Where a task resumes: the step runs from there to its next await.
            frame = _innermost(task) if isinstance(task, asyncio.Task) else None
            resumed = (frame.f_code, frame.f_lineno) if frame is not None else None
            before = usage(thread)
            began = time.monotonic()
            original(handle)
            ended = time.monotonic()
            after = usage(thread)
            took = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            if took > LONG_CALL_S and self.active:
                record(handle, took, before, after, resumed)
            if ended - began > LONG_CALL_S and self.active:
                self.walls.append((began, ended, took, self._name(handle, resumed)))

        asyncio.events.Handle._run = timed  # type: ignore[method-assign, assignment]

    def remove(self) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]

    def _record(
        self,
        handle: asyncio.events.Handle,
        took: float,
        before: resource.struct_rusage,
        after: resource.struct_rusage,
        resumed: tuple[Any, int] | None,
    ) -> None:
        name = self._name(handle, resumed)
        self.count[name] += 1
        if took * 1000 > self.longest_ms.get(name, 0.0):
            self.longest_ms[name] = took * 1000
            self.kernel[name] = (
                (after.ru_stime - before.ru_stime) * 1000,
                after.ru_minflt - before.ru_minflt,
                after.ru_nivcsw - before.ru_nivcsw,
            )

    @staticmethod
    def _name(handle: asyncio.events.Handle, resumed: tuple[Any, int] | None) -> str:
        callback = handle._callback  # type: ignore[attr-defined]
        task = getattr(callback, "__self__", None)
        if isinstance(task, asyncio.Task):
            outer: Any = task.get_coro()
            then = _where(_innermost(task), True)
            start = "its start"
            if resumed is not None:
                code, line = resumed
                start = f"{code.co_filename.removeprefix(ROOT)}:{line} {code.co_name}"
            # A task named for what it times (_timed) says which; "Task-N" says nothing.
            named = "" if task.get_name().startswith("Task-") else f" ({task.get_name()})"
            name = f"task {outer.__qualname__}{named}, from {start} to {then}"
        else:
            name = getattr(callback, "__qualname__", repr(callback))
            transport: Any = task
            protocol = getattr(transport, "_protocol", None)
            if protocol is not None:  # a transport's read: whose data it was
                name += f" for {_kind(protocol)} from {transport.get_extra_info('peername')}"
        return name


# With ``--steps``: each worker thread's last work item, and how long ago it ended (monotonic).
_last_work: dict[int, str] = {}


def _note_work() -> Callable[[], None]:
    """Have each worker thread note the work it is doing, or last did and when that ended
    (work that ends frees its objects as it returns); returns the undoing."""
    run = concurrent.futures.thread._WorkItem.run

    def noted(item: Any) -> None:
        fn: Any = item.fn
        args: tuple[Any, ...] = item.args
        # asyncio.to_thread: a context's run of the function, with its arguments.
        while isinstance(fn, functools.partial):
            fn, args = fn.func, (*fn.args, *args)
        if getattr(fn, "__qualname__", "") == "Context.run" and args:
            fn = args[0]
        name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
        _last_work[threading.get_ident()] = f" (working: {name}, from {time.monotonic():.3f})"
        try:
            run(item)
        finally:
            _last_work[threading.get_ident()] = f" (done: {name}, at {time.monotonic():.3f})"

    concurrent.futures.thread._WorkItem.run = noted  # type: ignore[method-assign, assignment]

    def undo() -> None:
        concurrent.futures.thread._WorkItem.run = run  # type: ignore[method-assign]

    return undo


def _threads_cpu() -> dict[int, float]:
    """Each live thread's CPU seconds so far, by ident (a clock read each: cheap enough to
    take at every tick)."""
    cpu = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            cpu[thread.ident] = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (OSError, ProcessLookupError):
            continue
    return cpu


def _threads_usage() -> dict[int, tuple[int, int, int]]:
    """Each thread's user and system CPU (clock ticks) and minor page faults so far, by
    native id (Linux; empty elsewhere)."""
    usage = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # After the name: state is field 3, minflt 10, utime 14, stime 15 (proc(5)).
        usage[int(tid)] = (int(fields[11]), int(fields[12]), int(fields[7]))
    return usage


def _slow_fork(took: float, before: dict[int, tuple[int, int, int]]) -> str:
    """What every other thread did during a slow fork: its CPU (user and system ms) and
    page faults, and where it is now (where it let go of the interpreter lock)."""
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    after = _threads_usage()
    frames = sys._current_frames()
    parts = []
    for thread in threading.enumerate():
        native = thread.native_id
        if native is None or native not in before or native not in after:
            continue
        (u0, s0, f0), (u1, s1, f1) = before[native], after[native]
        frame = frames.get(thread.ident) if thread.ident is not None else None
        parts.append(
            f"{thread.name}: {(u1 - u0) * tick_ms:.0f}+{(s1 - s0) * tick_ms:.0f} ms, "
            f"{f1 - f0:,} faults, at {_where(frame, innermost=True)}"
        )
    return f"{took * 1000:.0f} ms | " + " || ".join(parts)


def _innermost(task: asyncio.Task[Any]) -> Any:
    """The frame a task waits in: the innermost coroutine of its chain of awaits."""
    coro: Any = task.get_coro()
    while getattr(coro, "cr_await", None) is not None and hasattr(coro.cr_await, "cr_frame"):
        coro = coro.cr_await
    return getattr(coro, "cr_frame", None)


def _kind(obj: Any) -> str:
    """An object's type, with the module that defines it when it is a class of ours."""
    kind = type(obj)
    module = getattr(kind, "__module__", "") or ""
    if module in ("builtins", ""):
        if isinstance(obj, (tuple, list)) and obj:
            return f"{kind.__name__} of {type(obj[0]).__name__}"
        if isinstance(obj, dict) and obj:
            return f"dict of {type(next(iter(obj.values()))).__name__}"
        return kind.__name__
    return f"{module}.{kind.__qualname__}"


def _owner(container: Any, skip: tuple[Any, ...], depth: int = 3) -> str:
    """What holds a container: the chain of holders' types (and attribute names), ``skip``
    (the lists of this inquiry) aside."""
    if depth == 0:
        return "?"
    for holder in gc.get_referrers(container):
        if any(holder is s for s in skip) or isinstance(holder, type(sys._getframe())):
            continue
        if isinstance(holder, dict):
            for key, value in holder.items():
                if value is container:
                    return f"{_owner(holder, skip, depth - 1)}.{key}"
        else:
            return f"{_owner(holder, skip, depth - 1)}/{type(holder).__name__}"
    return "?"


def _where(frame: Any, innermost: bool = False) -> str:
    """The innermost three frames of foresight's code (with ``innermost``, the frame itself
    first, wherever its code is)."""
    where: list[str] = []
    while frame is not None and len(where) < 3:
        code = frame.f_code
        ours = ROOT in code.co_filename and "bench/looplag" not in code.co_filename
        if ours or (innermost and not where):
            short = code.co_filename.removeprefix(ROOT)
            where.append(f"{short}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return " < ".join(where) or "(outside foresight)"


class Rig:
    """The store, the rules over it, the collector, the forecast and the registry."""

    def __init__(self, args: argparse.Namespace, data_dir: Path, endpoints: list[Any]) -> None:
        self.clock = VirtualClock(start=START_S, autoadvance=False)
        self.store = Store(
            StoreSettings(data_dir=data_dir / "store", max_series=10_000_000), self.clock
        )
        written = set().union(*(written_metrics(g) for g in load_groups(RULES)))
        cluster = Cluster(args.rule_nodes, PODS_PER_NODE)
        self.scrapes = Scrapes(self.store, load_rules(RULES), cluster, skip=written)
        settings = RuleSettings(
            files=[RULES],
            builtin=False,
            evaluation_interval_seconds=SCRAPE_MS / 1000,
            state_dir=data_dir / "rules",
        )
        self.manager = RuleManager(settings, EvalContext(Engine(self.store, ENGINE), self.store))
        if not self.manager.reload(force=True):
            raise SystemExit(self.manager.last_error)
        self.endpoints = [
            NodeEndpoint(name, addresses, port) for name, addresses, port in endpoints
        ]
        self.collector_settings = CollectorSettings(
            kubelet_scheme="http",
            kubelet_via_proxy=False,
            stagger_seconds=0,
            token_file=None,
            ca_file=None,
            concurrency=64,
        )
        self.forecast = KeptForecast(ForecastSpec(horizon_seconds=300), ForecastSettings(), 60)
        self.history = _week_of_load()

    def build_history(self, scrapes: int) -> float:
        """The rules' history: a scrape of the synthetic cluster, then the due groups, as the
        service would have run them (untimed)."""
        started = time.perf_counter()
        for k in range(SCRAPES - scrapes, SCRAPES):
            self.manager.evaluate_due(self.scrapes.append(k))
        return time.perf_counter() - started


def _week_of_load() -> Series:
    step = 60.0
    n = 7 * 1440
    t = np.arange(n)
    rng = np.random.default_rng(3)
    values = 50 + 30 * np.sin(2 * np.pi * t / 1440) + rng.normal(0, 3, n)
    return Series(START_S - (n - 1) * step, step, values)


async def _collected(
    collection: CollectionCycle,
    freeze: bool,
    huge_pages: bool,
    times: dict[str, list[float]] | None = None,
    part: str = "huge pages (CPU)",
) -> None:
    """A cycle, then what the service does after each (see runtime.gcpause and
    runtime.hugepages); the latter's CPU time in ``times``."""
    await collection.run_once()
    if freeze:
        freeze_long_lived()
    if huge_pages:
        done = await collapse_heap_off_loop()
        if times is not None:
            times.setdefault(part, []).append(done.cpu_seconds)


async def _timed(part: str, times: dict[str, list[float]], work: Any) -> None:
    task = asyncio.current_task()
    if task is not None:
        task.set_name(part)
    started = time.perf_counter()
    await work
    times.setdefault(part, []).append(time.perf_counter() - started)


async def _measure(args: argparse.Namespace, rig: Rig, conn: Connection) -> dict[str, Any]:
    monitor = Monitor(args.why, threads=args.steps)
    long_calls = LongCalls()
    slow_steps = SlowSteps()
    # As the service: only a process that forks for /metrics collapses its heap.
    huge_pages = not args.no_huge_pages and not args.render_in_thread
    forks: list[float] = []
    fork_detail: list[tuple[float, int, int]] = []
    slow_forks: list[str] = []
    fork = os.fork

    def timed_fork() -> int:
        started = time.perf_counter()
        threads = _threads_usage() if args.why else {}
        before = resource.getrusage(resource.RUSAGE_THREAD)
        pid = fork()
        if pid:
            after = resource.getrusage(resource.RUSAGE_THREAD)
            forks.append(time.perf_counter() - started)
            if args.why and forks[-1] > SLOW_FORK_S:
                slow_forks.append(_slow_fork(forks[-1], threads))
            # The thread's own CPU in the fork, and how often it waited (for a lock: an
            # at-fork handler's, say) or was preempted: a long fork with little CPU and
            # many waits is not the page-table copy.
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            fork_detail.append(
                (cpu, after.ru_nvcsw - before.ru_nvcsw, after.ru_nivcsw - before.ru_nivcsw)
            )
        return pid

    os.fork = timed_fork
    undo_note_work = _note_work() if args.steps else None
    if args.long_calls:
        # Before the loop's executor starts its threads: the hook is set for new threads.
        long_calls.install()
    times: dict[str, list[float]] = {}
    samples = 0
    async with kubelet_client(rig.collector_settings) as client:
        health = ScrapeHealth("kubelet")
        scraper = Scraper(
            client,
            RealSleeps(rig.clock),
            health,
            concurrency=rig.collector_settings.concurrency,
            timeout_s=30,
            stagger_s=args.stagger,
            max_bytes=rig.collector_settings.max_response_bytes,
            backoff_initial_s=5,
            backoff_max_s=60,
        )
        collector = KubeletCollector(
            scraper,
            rig.store,
            rig.clock,
            rig.collector_settings,
            lambda: rig.endpoints,
            api_server=None,
            headers=dict,
        )
        model = cluster_model(args.nodes, PODS_PER_NODE)
        costs = CostSettings()
        collection = CollectionCycle(rig.store, rig.clock, model, collector, scrape_health=[health])

        def exported() -> list[Family | Deferred]:
            # As the service's /metrics (autoscaler.service.Service._families): the cost
            # model over the cycle's snapshot, built by the renderer.
            snapshot = collection.snapshot()
            if snapshot is None:
                return collection.families()
            latest, known = snapshot
            cost = Deferred(
                lambda: cost_families(snapshot_from_cluster(known, latest, costs), costs)
            )
            return [*collection.families(), cost]

        registry = CollectorRegistry()
        registry.register(FamiliesCollector(exported))
        # A first cycle untimed: rates need two scrapes.
        await _collected(collection, not args.no_freeze, huge_pages, times, "huge pages 1st (CPU)")
        if args.why or args.steps:
            # From here on, as the monitor: the first cycle's connections and new series are
            # not what a running service's loop does every cycle.
            slow_steps.install()
        flusher = asyncio.create_task(rig.store.run_flusher())
        watch = asyncio.create_task(monitor.run())
        scrape = SCRAPES
        try:
            for cycle in range(args.cycles):
                rig.clock.advance(CYCLE_S)
                conn.send("advance")
                await asyncio.get_running_loop().run_in_executor(None, conn.recv)
                now_ms = round(rig.clock.now() * 1000)
                parts = [
                    _timed(
                        "collection",
                        times,
                        _collected(collection, not args.no_freeze, huge_pages, times),
                    )
                ]
                if now_ms >= T0_MS + scrape * SCRAPE_MS:
                    at = rig.scrapes.append(scrape)
                    scrape += 1
                    parts.append(
                        _timed("rule round", times, evaluate_round(rig.manager, at, rig.clock))
                    )
                if cycle == 1:
                    level = float(rig.history.values[-1])
                    fit = rig.forecast.peak_async(rig.history, level, rig.clock)
                    parts.append(_timed("model refit", times, fit))
                render = exposition_async(registry, in_child=not args.render_in_thread)
                parts.append(_timed("/metrics render", times, render))
                monitor.phase = f"cycle {cycle}"
                started = time.perf_counter()
                await asyncio.gather(*parts)
                times.setdefault("cycle (all parts)", []).append(time.perf_counter() - started)
                samples = rig.store.stats().samples_appended
        finally:
            slow_steps.active = False
            watch.cancel()
            flusher.cancel()
            await asyncio.gather(watch, flusher, return_exceptions=True)
            long_calls.remove()
            slow_steps.remove()
            if undo_note_work is not None:
                undo_note_work()
            os.fork = fork
        errors = sum(health.errors.values())
        # What freezing kept from the collector (and what waits for a full collection), while
        # the run's objects are all alive still: frozen cyclic garbage is never freed.
        gc.unfreeze()
        gc.set_debug(gc.DEBUG_SAVEALL)
        frozen_garbage = gc.collect()
        gc.set_debug(0)
        garbage_kinds = Counter(_kind(o) for o in gc.garbage).most_common(12)
        gc.garbage.clear()
    lags = np.array(monitor.lags) * 1000
    return {
        "nodes": args.nodes,
        "rule_nodes": args.rule_nodes,
        "rule_groups": len(rig.manager.groups),
        "cycles": args.cycles,
        "stagger_s": args.stagger,
        "kubelets_nice": args.kubelets_nice,
        "frozen_each_cycle": not args.no_freeze,
        "render_in_child": not args.render_in_thread,
        "huge_pages": huge_pages,
        "scrape_errors": errors,
        "samples_appended": samples,
        "ticks": len(lags),
        "max_lag_ms": float(lags.max()) if len(lags) else float("nan"),
        "p99_lag_ms": float(np.percentile(lags, 99)) if len(lags) else float("nan"),
        "worst_in": monitor.worst_at,
        "parts_s": {k: max(v) for k, v in times.items()},
        "stalls": dict(monitor.stalls.most_common(8)),
        "long_calls_ms": {
            k: {"longest": long_calls.longest_ms[k], "total": v}
            for k, v in long_calls.total_ms.most_common(12)
        },
        "forks_ms": [t * 1000 for t in forks],
        "forks_cpu_ms": [cpu * 1000 for cpu, _, _ in fork_detail],
        "forks_waits": [waits for _, waits, _ in fork_detail],
        "forks_preempted": [preempted for _, _, preempted in fork_detail],
        "slow_forks": slow_forks,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "slow_loop_steps_ms": {
            name: {
                "longest": ms,
                "count": slow_steps.count[name],
                "kernel_ms": slow_steps.kernel[name][0],
                "page_faults": slow_steps.kernel[name][1],
                "preempted": slow_steps.kernel[name][2],
            }
            for name, ms in sorted(slow_steps.longest_ms.items(), key=lambda kv: -kv[1])[:12]
        },
        "worst_lags": _worst_lags(monitor.late, slow_steps.walls),
        "late_threads": sorted(monitor.late_threads, key=lambda d: -d["ms"])[:5],
        "stall_episodes": [
            {"ms": lag * 1000, "in": phase, "samples": samples}
            for lag, phase, samples in monitor.episodes
        ],
        "young_gc_longest_ms": [t * 1000 for t in monitor.young_longest],
        "young_gcs": monitor.young_count,
        "young_gcs_slow": sorted(monitor.young_slow, reverse=True)[:10],
        "frozen_garbage": frozen_garbage,
        "frozen_garbage_kinds": garbage_kinds,
        "full_gcs": len(monitor.gc_pauses),
        "full_gc_walked": monitor.gc_walked,
        "full_gc_collected": monitor.gc_collected,
        "longest_full_gc_ms": max(monitor.gc_pauses, default=0.0) * 1000,
        "longest_full_gc_cpu_ms": max(monitor.gc_cpu, default=0.0) * 1000,
    }


def _worst_lags(
    late: list[tuple[float, float]], walls: list[tuple[float, float, float, str]]
) -> list[dict[str, Any]]:
    """The five latest wake-ups, each with the loop steps that ran while it was due (their
    wall and CPU ms): what the lateness was made of. What is not in a step was spent
    between steps: waiting for the interpreter lock after a poll, or for a core."""
    worst = sorted(late, key=lambda d: d[1] - d[0], reverse=True)[:5]
    return [
        {
            "ms": (woke - due) * 1000,
            "steps": [
                (round((end - began) * 1000), round(cpu * 1000), name)
                for began, end, cpu, name in walls
                if end > due and began < woke
            ],
        }
        for due, woke in worst
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the kubelets, build the store and measure."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(args.nodes, args.kubelets_nice, child), daemon=True)
    proc.start()
    try:
        info = parent.recv()
        with tempfile.TemporaryDirectory() as tmp:
            rig = Rig(args, Path(tmp), info["nodes"])
            built = rig.build_history(args.history_scrapes)
            try:
                result = asyncio.run(_measure(args, rig, parent))
            finally:
                rig.store.close()
        result["history_build_s"] = built
        return result
    finally:
        parent.send("stop")
        proc.join(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.looplag", description=__doc__)
    parser.add_argument("--nodes", type=int, default=1_000, help="simulated kubelets")
    parser.add_argument(
        "--rule-nodes", type=int, default=300, help="nodes of the rules' synthetic cluster"
    )
    parser.add_argument("--cycles", type=int, default=8, help="15-s collection cycles timed")
    parser.add_argument(
        "--history-scrapes",
        type=int,
        default=12,
        help="scrapes (30 s apart) of the rules' cluster, each with its rule round, before "
        "the timed part (bench.alerts: 60)",
    )
    parser.add_argument(
        "--kubelets-nice",
        type=int,
        default=KUBELETS_NICE,
        metavar="N",
        help="niceness of the simulated kubelets' process: they stand for other machines "
        f"(default {KUBELETS_NICE}, the lowest priority; 0: the service's, so they compete "
        "with it for this machine's cores)",
    )
    parser.add_argument(
        "--stagger",
        type=float,
        default=CollectorSettings().stagger_seconds,
        metavar="SECONDS",
        help="spread each cycle's scrape starts over this long, as collectors.stagger_seconds "
        "does (default: the service's; 0: all at once, harsher than the service)",
    )
    parser.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave what lives after each collection cycle to the garbage collector's full "
        "collections (the service freezes it)",
    )
    parser.add_argument(
        "--no-huge-pages",
        action="store_true",
        help="leave the heap in small pages after each cycle (the service moves it into huge "
        "pages when it forks for /metrics: server.huge_pages)",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="sys.setswitchinterval: how long a thread keeps the interpreter lock when the "
        "loop wants it (default: the service's, runtime.gil.LOOP_SWITCH_INTERVAL_S; Python's "
        "own: 0.005)",
    )
    parser.add_argument(
        "--long-calls",
        action="store_true",
        help=f"list the C calls of every thread that took over {LONG_CALL_S * 1000:.0f} ms "
        "of CPU (a profiling hook slows the run)",
    )
    parser.add_argument(
        "--render-in-thread",
        action="store_true",
        help="render /metrics in a thread rather than a forked child (the service's "
        "server.render_metrics_in_child=false)",
    )
    parser.add_argument(
        "--why", action="store_true", help="count where the loop's thread is when it stalls"
    )
    parser.add_argument(
        "--steps",
        action="store_true",
        help="time the loop's steps (as --why does, without its watchdog): the slow ones, "
        "and those that ran while the loop was latest",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.switch_interval is None:
        favour_event_loop()
    else:
        sys.setswitchinterval(args.switch_interval)
    keep_blas_in_caller()  # as the service does (see runtime.forked)
    free_closed_transports()  # and this (see runtime.transports)
    result = run(args)
    result["switch_interval_s"] = sys.getswitchinterval()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"\n{result['nodes']:,} simulated nodes x {PODS_PER_NODE} pods collected; "
        f"kube-prometheus rules ({result['rule_groups']} groups) over a "
        f"{result['rule_nodes']:,}-node synthetic cluster in the same store; "
        f"{result['cycles']} cycles (scrapes staggered over {result['stagger_s']:g} s; "
        f"kubelets at nice {result['kubelets_nice']}), "
        f"{result['samples_appended']:,} samples appended, "
        f"{result['scrape_errors']} scrape errors\n"
    )
    print(f"{'part':<22} {'longest s':>10}")
    for part, seconds in result["parts_s"].items():
        print(f"{part:<22} {seconds:>10.2f}")
    print(
        f"\nevent-loop lag over {result['ticks']:,} ticks of {TICK_S * 1000:.0f} ms: "
        f"max {result['max_lag_ms']:.1f} ms (in {result['worst_in']}), "
        f"p99 {result['p99_lag_ms']:.1f} ms; target: max <= 100 ms"
    )
    print(
        f"full garbage collections meanwhile: {result['full_gcs']}, longest "
        f"{result['longest_full_gc_ms']:.0f} ms ({result['longest_full_gc_cpu_ms']:.0f} ms of "
        "CPU; they stop every thread)"
    )
    if result["full_gc_collected"]:
        print(f"  unreachable objects each freed: {result['full_gc_collected']}")
    for walked, kinds in result["full_gc_walked"]:
        which = "young" if kinds[0][0] == "young" else "full"
        common = ", ".join(f"{name} {n:,}" for name, n in kinds if name != "young")
        print(f"  a {which} collection walked {walked:,} objects: {common}")
    print(
        f"cyclic garbage left uncollected at the end: {result['frozen_garbage']:,} objects "
        "(frozen, so never freed, or waiting in the oldest generation for a full collection)"
    )
    if result["frozen_garbage"]:
        kinds = ", ".join(f"{name} {n:,}" for name, n in result["frozen_garbage_kinds"])
        print(f"  of which: {kinds}")
    young = result["young_gc_longest_ms"]
    print(
        f"young collections: {result['young_gcs'][0]:,} of generation 0 (longest "
        f"{young[0]:.0f} ms of CPU), {result['young_gcs'][1]:,} of generation 1 (longest "
        f"{young[1]:.0f} ms of CPU)"
    )
    for ms, generation, freed, thread, where, big in result["young_gcs_slow"]:
        print(
            f"  a generation {generation} collection of {ms} ms CPU freed {freed:,} objects, "
            f"in {thread} at {where}" + (f"; it walked {big}" if big else "")
        )
    for where, count in result["stalls"].items():
        print(f"  stalled {count:>4} x 10 ms in {where}")
    if result["forks_ms"]:
        print(
            f"forks for /metrics: longest {max(result['forks_ms']):.0f} ms "
            f"(peak resident {result['rss_mib']:,.0f} MiB); each fork's ms, CPU ms, waits, "
            "preemptions:"
        )
        for fork in zip(
            result["forks_ms"],
            result["forks_cpu_ms"],
            result["forks_waits"],
            result["forks_preempted"],
            strict=True,
        ):
            print("    {:.0f} {:.0f} {} {}".format(*fork))
        for slow in result["slow_forks"]:
            print(f"  a slow fork, each thread's CPU (user+system), faults and place: {slow}")
    if result["slow_loop_steps_ms"]:
        print(
            f"loop steps over {LONG_CALL_S * 1000:.0f} ms of CPU (longest ms, of it in the "
            "kernel, its page faults and preemptions; count):"
        )
    for name, step in result["slow_loop_steps_ms"].items():
        print(
            f"  {step['longest']:>6.0f} {step['kernel_ms']:>6.0f} {step['page_faults']:>7,}"
            f" {step['preempted']:>4} {step['count']:>5}  {name}"
        )
    for late in result["late_threads"]:
        print(
            f"a wake-up {late['ms']:.0f} ms late ({late['at']}, load {late['load']:.1f}); each "
            "thread's CPU ms meanwhile, and where it was just after:"
        )
        for name, ms, where in late["threads"]:
            print(f"    {ms:>6.1f}  {name}: {where}")
    for lag in result["worst_lags"]:
        print(f"a wake-up {lag['ms']:.0f} ms late; loop steps meanwhile (wall ms, CPU ms):")
        for wall, cpu, name in lag["steps"]:
            print(f"    {wall:>5} {cpu:>5}  {name}")
    for episode in result["stall_episodes"]:
        print(f"a stall of about {episode['ms']:.0f} ms in {episode['in']}, sampled every 10 ms:")
        for sample in episode["samples"]:
            print(f"    {sample}")
    if result["long_calls_ms"]:
        print(f"C calls over {LONG_CALL_S * 1000:.0f} ms of CPU (longest / total ms):")
    for where, ms in result["long_calls_ms"].items():
        print(f"  {ms['longest']:>6.0f} {ms['total']:>7.0f}  {where}")


if __name__ == "__main__":
    main()
