"""The slow work the service moves off the event loop gives what it gave on the loop: the
/metrics text, a forecast after a fit, a rule round; and readers on the loop never see a
group half-evaluated."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge
from threadpoolctl import threadpool_info, threadpool_limits

import autoscaler.controller.controller as controller_module
from alerts.rules.group import EvalContext
from alerts.rules.manager import RuleManager
from alerts.rules.model import RuleSpec
from alerts.rules.state import Alert, AlertState
from alerts.service import evaluate_round
from alerts.settings import RuleSettings
from autoscaler.controller.forecasting import KeptForecast
from autoscaler.forecast.base import Series
from autoscaler.forecast.settings import ForecastSettings
from autoscaler.resource.model import ForecastSpec
from promql import Engine, PromQLSettings
from runtime import hugepages
from runtime.clock import VirtualClock
from runtime.families import (
    Deferred,
    FamiliesCollector,
    Family,
    exposition,
    exposition_async,
)
from runtime.forked import keep_blas_in_caller
from runtime.gcpause import freeze_long_lived, paused_gc
from runtime.gil import LOOP_SWITCH_INTERVAL_S
from tests.controller.conftest import horizontal, open_rig, pas
from tests.support.pages import anonymous, huge_kib_at
from tests.support.prometheus import free_port
from tsdb import Store, StoreSettings, name_is

REPO = Path(__file__).resolve().parents[2]
T0_MS = 1_767_225_600_000
RULES = """groups:
- name: g
  interval: 1m
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: JobDown
    expr: job:up:sum == 0
    labels:
      severity: page
"""


async def test_the_awaitable_render_gives_the_same_bytes() -> None:
    usage = Family("foresight_pod_cpu_usage_cores", "gauge", "CPU used by the pod, in cores.")
    for i in range(5000):
        usage.add(i / 7, namespace=f"ns-{i % 9}", pod=f"p-{i}", node='n"1')
    registry = CollectorRegistry()
    Gauge("foresight_build_info", "Build.", registry=registry).set(1)
    registry.register(FamiliesCollector(lambda: [usage]))
    assert await exposition_async(registry) == exposition(registry)
    assert gc.isenabled()


def _full_collections_held() -> bool:
    return gc.get_threshold()[2] > 1_000_000


def test_gc_pauses_in_several_threads_end_with_full_collections_back() -> None:
    before = gc.get_threshold()
    inside = threading.Event()
    leave = threading.Event()

    def other() -> None:
        with paused_gc():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(10)
    with paused_gc():
        assert _full_collections_held()
    # The other thread's pause still runs: the first pause to end must not end it.
    assert _full_collections_held()
    leave.set()
    thread.join(10)
    assert gc.get_threshold() == before
    assert gc.isenabled()


def test_a_pause_holds_off_full_collections_but_not_young_ones() -> None:
    collected: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        with paused_gc():
            # Survivors enough for many young collections and, unpaused, full ones.
            kept = [[i] for i in range(200_000)]
    finally:
        gc.callbacks.remove(seen)
    del kept
    # Nothing piles up in the young generation for one long collection after the pause.
    assert collected.count(0) > 100
    assert 1 in collected
    assert 2 not in collected


def _week() -> Series:
    t = np.arange(7 * 1440)
    values = 50 + 30 * np.sin(2 * np.pi * t / 1440) + np.random.default_rng(1).normal(0, 3, len(t))
    return Series(1_767_225_600.0, 60.0, values)


async def test_a_fit_in_a_worker_thread_gives_the_forecast_of_a_fit_on_the_loop() -> None:
    spec = ForecastSpec(horizon_seconds=300)
    history = _week()
    level = float(history.values[-1])
    on_loop = KeptForecast(spec, ForecastSettings(), 60)
    apart = KeptForecast(spec, ForecastSettings(), 60)
    assert apart.needs_fit(history)
    assert await apart.peak_async(history, level, VirtualClock(history.now)) == on_loop.peak(
        history, level
    )
    assert apart.fitted_at == on_loop.fitted_at == history.now
    assert not apart.needs_fit(history)
    assert apart.choice == on_loop.choice


class _Rig:
    def __init__(self, tmp: Path, name: str) -> None:
        rules = tmp / name / "rules.yaml"
        rules.parent.mkdir(parents=True)
        rules.write_text(RULES)
        clock = VirtualClock(T0_MS / 1000)
        self.store = Store(StoreSettings(), clock, persistent=False)
        settings = RuleSettings(files=[rules], builtin=False, state_dir=tmp / name / "state")
        self.sent: list[tuple[str, list[Alert]]] = []
        engine = Engine(self.store, PromQLSettings())
        self.manager = RuleManager(settings, EvalContext(engine, self.store), self._sink)
        assert self.manager.reload(force=True)
        for k in range(10):
            self.store.append({"__name__": "up", "job": "api"}, T0_MS + k * 60_000, 0.0)

    def _sink(self, rule: RuleSpec, alerts: Sequence[Alert]) -> None:
        self.sent.append((rule.name, list(alerts)))

    def states(self) -> list[tuple[str, AlertState]]:
        return [(r.name, a.state) for g in self.manager.groups for r, a in g.active_alerts()]


async def test_readers_see_a_group_as_of_its_last_round_until_the_new_one_is_installed(
    tmp_path: Path,
) -> None:
    rig = _Rig(tmp_path, "apart")
    [group] = rig.manager.groups
    [(_, slot)] = rig.manager.due(T0_MS + 5 * 60_000)
    done = rig.manager.evaluate_apart(group, slot)
    # The evaluation ran (the alert is firing in the copy) but nothing readers see changed.
    assert [a.state for _, a in done.group.active_alerts()] == [AlertState.FIRING]
    assert rig.manager.groups == [group] and group.last_evaluation_ms == 0
    assert group.active_alerts() == [] and rig.sent == []
    rig.manager.install(done)
    assert rig.manager.groups == [done.group]
    assert rig.states() == [("JobDown", AlertState.FIRING)]
    assert [name for name, _ in rig.sent] == ["JobDown"]


async def test_a_round_in_threads_equals_a_round_on_the_loop(tmp_path: Path) -> None:
    apart, inline = _Rig(tmp_path, "apart"), _Rig(tmp_path, "inline")
    for minute in (5, 6, 8):
        at = T0_MS + minute * 60_000
        assert (
            await evaluate_round(apart.manager, at, VirtualClock(at / 1000))
            == inline.manager.evaluate_due(at)
            == 1
        )
    assert apart.states() == inline.states() == [("JobDown", AlertState.FIRING)]
    assert [(n, [a.labels for a in al]) for n, al in apart.sent] == [
        (n, [a.labels for a in al]) for n, al in inline.sent
    ]
    # Recorded series went into the store from the worker thread.
    [recorded] = apart.store.select([name_is("job:up:sum")], 0, 2**62)
    assert recorded.values.tolist() == [0.0, 0.0, 0.0]
    assert (tmp_path / "apart" / "state").exists()


async def test_a_round_evaluates_and_saves_with_full_collections_held_off(tmp_path: Path) -> None:
    rig = _Rig(tmp_path, "paused")
    evaluate, save = rig.manager.evaluate_apart, rig.manager.save_state
    seen: list[tuple[str, bool]] = []

    def watched(*args: Any) -> Any:
        seen.append(("evaluate", _full_collections_held()))
        return evaluate(*args)

    def saved(*args: Any) -> Any:
        seen.append(("save", _full_collections_held()))
        return save(*args)

    rig.manager.evaluate_apart = watched  # type: ignore[method-assign]
    rig.manager.save_state = saved  # type: ignore[method-assign]
    at = T0_MS + 5 * 60_000
    assert await evaluate_round(rig.manager, at, VirtualClock(at / 1000)) == 1
    # No full collection in the round's threads can stop the loop's; they run again after.
    assert seen == [("evaluate", True), ("save", True)]
    assert not _full_collections_held()


def test_foresight_run_hands_the_interpreter_lock_back_within_a_millisecond(
    tmp_path: Path,
) -> None:
    # The service itself replaced by a probe: what matters is the process it runs in.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import asyncio, sys\n"
        "from autoscaler.cli import cmd_run\n"
        "async def serve(settings):\n"
        "    print(sys.getswitchinterval())\n"
        "    return 0\n"
        "cmd_run._serve = serve\n"
        "from autoscaler.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, str(probe), "run"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.split()[-1]) == LOOP_SWITCH_INTERVAL_S == 0.001


class _Cyclic:
    def __init__(self) -> None:
        self.me = self


def test_freezing_collects_young_cyclic_garbage_first() -> None:
    gc.unfreeze()
    kept = _Cyclic()
    dropped = weakref.ref(_Cyclic())
    try:
        freeze_long_lived()
        assert dropped() is None, "a young cycle must be collected, not frozen for good"
        assert gc.get_freeze_count() > 0
        assert kept not in gc.get_objects()
    finally:
        gc.unfreeze()


async def test_every_collection_cycle_of_the_service_freezes_what_it_leaves(
    tmp_path: Path,
) -> None:
    async with open_rig(tmp_path, history=()) as rig:
        try:
            for _ in range(2):
                gc.unfreeze()
                made = _Cyclic()
                await rig.service._collect()
                assert gc.get_freeze_count() > 0
                assert made not in gc.get_objects()
        finally:
            gc.unfreeze()


@pytest.mark.skipif(
    sys.platform != "linux" or not hugepages.supported(),
    reason="the kernel cannot collapse memory into huge pages (Linux 6.1+, THP not never)",
)
async def test_every_collection_cycle_moves_dense_memory_into_huge_pages(
    tmp_path: Path,
) -> None:
    async with open_rig(tmp_path, history=()) as rig:
        assert rig.service.settings.server.huge_pages
        with anonymous((8 << 20, 8 << 20)) as (dense,):
            assert huge_kib_at(dense) == 0
            await rig.service._collect()
            assert huge_kib_at(dense) >= 3 * hugepages.HUGE_PAGE // 1024


async def test_the_service_renders_metrics_in_a_forked_child(tmp_path: Path) -> None:
    def where() -> list[Family]:
        family = Family("foresight_rendered_by", "gauge", "The process that rendered.")
        family.add(1.0, pid=str(os.getpid()))
        return [family]

    async with open_rig(tmp_path, history=()) as rig:
        assert rig.service.settings.server.render_metrics_in_child
        rig.service.registry.register(FamiliesCollector(lambda: [Deferred(where)]))
        runner = web.AppRunner(rig.service.app(), access_log=None, handle_signals=False)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with httpx.AsyncClient() as client:
                text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        finally:
            await runner.cleanup()
    rendered = re.search(r'foresight_rendered_by\{pid="(\d+)"\}', text)
    assert rendered is not None and int(rendered[1]) != os.getpid()


async def test_the_controllers_metrics_are_built_and_recorded_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built_in: list[int] = []
    real = controller_module.autoscaler_families

    def families(*args: Any) -> list[Family]:
        built_in.append(threading.get_ident())
        return real(*args)

    async with open_rig(tmp_path) as rig:
        await rig.create(pas("web", horizontal()))
        await rig.step(60)
        monkeypatch.setattr(controller_module, "autoscaler_families", families)
        await rig.service.control_once()
        assert built_in and threading.get_ident() not in built_in
        [desired] = rig.service.store.select(
            [name_is("foresight_autoscaler_desired_replicas")], 0, 2**62
        )
        assert dict(desired.labels)["autoscaler"] == "web"


async def test_the_kubelet_collector_freezes_what_each_slice_leaves(tmp_path: Path) -> None:
    async with open_rig(tmp_path, history=()) as rig:
        assert rig.service.cycle is not None
        try:
            gc.unfreeze()
            await rig.service.cycle._kubelets.collect()
            # Each container's state, made by the first ingest, is out of the collector's
            # reach at once rather than at the end of the cycle.
            assert gc.get_freeze_count() > 0
        finally:
            gc.unfreeze()


async def test_the_service_keeps_blas_off_a_pool_of_its_own(tmp_path: Path) -> None:
    # A pool busy in another thread's matrix product makes a fork hang (runtime.forked).
    keep_blas_in_caller.cache_clear()
    threadpool_limits(2, user_api="blas")
    async with open_rig(tmp_path, history=()):
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas and {p["num_threads"] for p in blas} == {1}
