"""A real Prometheus as foresight's store: the same simulated hours, the same decisions.

The live parity run (the simulated cluster, collection, the controller scaling through the
API, a rule group) goes twice over the same trace: once on the embedded store, once with
``storage.query_url`` and ``remote_write`` pointing at a real Prometheus, the week of history
in Prometheus only (promtool blocks) and an embedded store that keeps raw samples for one
hour. The controller must make the same scaling decision at every step, and the same alerts
must fire, although the second run reads its history, and the rule's three-hour window,
from Prometheus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from alerts.service import evaluate_round
from autoscaler.demo.parity import (
    LIVE_START,
    LiveOptions,
    ParityConfig,
    live_run,
    replayed_run,
    trace_load,
    trace_world,
)
from autoscaler.demo.run import write_history
from autoscaler.service import Service
from runtime.clock import VirtualClock
from tests.support.prometheus import blocks_from_store, running_prometheus
from tests.support.traces import write_daily_trace
from tsdb import Store, StoreSettings

# 06:00 to 09:00 of a daily cycle: the load rises, so the service scales and the alert fires.
CONFIG = ParityConfig(history_days=1.25, days=3 / 24, step_seconds=60)
RECORDED = "workload:cpu_usage_cores:avg3h"
RULES = """
groups:
  - name: load
    interval: 1m
    rules:
      - record: workload:cpu_usage_cores:avg3h
        expr: avg_over_time(foresight_workload_cpu_usage_cores[3h])
      - alert: LoadAboveThreeHourAverage
        expr: foresight_workload_cpu_usage_cores > 1.15 * workload:cpu_usage_cores:avg3h
        for: 2m
"""


class Observer:
    """Rule rounds after each reconcile, and which alerts fire at each step."""

    def __init__(self, steps: int) -> None:
        self.firing: list[list[str]] = [[] for _ in range(steps)]
        self.averages = np.full(steps, np.nan)
        self._loaded = False

    async def after_control(self, service: Service, k: int) -> None:
        manager = service.alerts.manager
        if not self._loaded:
            assert manager.reload(force=True), manager.file_errors
            self._loaded = True
        now_ms = round(service.clock.now() * 1000)
        await evaluate_round(manager, now_ms, service.clock)
        result = await asyncio.to_thread(
            service.engine.instant, 'ALERTS{alertstate="firing"}', now_ms
        )
        self.firing[k] = sorted(dict(s.labels)["alertname"] for s in result.series)
        recorded = await asyncio.to_thread(service.engine.instant, RECORDED, now_ms)
        if recorded.series:
            self.averages[k] = recorded.series[0].values[-1]


def _run(trace: Path, out: Path, options: LiveOptions) -> Any:
    initial = replayed_run(trace_world(trace, CONFIG)).initial
    return asyncio.run(live_run(trace, CONFIG, initial, out=out, options=options))


def _embedded(trace: Path, tmp: Path, rules: Path) -> tuple[Any, Observer]:
    observer = Observer(CONFIG.steps)
    settings = {"rules": {"files": [rules], "builtin": False}}
    options = LiveOptions(settings=settings, after_control=observer.after_control)
    return _run(trace, tmp / "embedded", options), observer


def _history_in_prometheus(trace: Path, work: Path) -> Path:
    """The week before the live start as Prometheus blocks, not in foresight's store."""
    clock = VirtualClock()
    store = Store(StoreSettings(), clock, persistent=False)
    load = trace_load(trace, CONFIG)
    days = (CONFIG.history_seconds - CONFIG.preroll_seconds) / 86_400
    start = LIVE_START - CONFIG.preroll_seconds
    write_history(store, load, "bench", "app", start, days, step=CONFIG.step_seconds)
    work.mkdir(parents=True, exist_ok=True)
    try:
        return blocks_from_store(store, work)
    finally:
        store.close()


def _sender() -> tuple[Callable[[Service], Awaitable[None]], Callable[[], None]]:
    """Flush the store after each collection, so remote write reads it from the log."""
    task: list[asyncio.Task[None]] = []

    async def after_collect(service: Service) -> None:
        if not task:
            task.append(asyncio.create_task(service.remote_write.run()))
        await asyncio.to_thread(service.store.flush)

    def stop() -> None:
        for t in task:
            t.cancel()

    return after_collect, stop


def test_prometheus_as_store_gives_the_same_decisions_and_alerts(tmp_path: Path) -> None:
    trace = write_daily_trace(tmp_path / "daily.csv", days=3, step_seconds=60)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    embedded, embedded_alerts = _embedded(trace, tmp_path, rules)
    assert any(embedded_alerts.firing), "the rule never fired: the comparison would be empty"
    assert len(set(embedded.replicas.tolist())) >= 3, "a run that scales, not a flat line"

    tsdb = _history_in_prometheus(trace, tmp_path / "prometheus")
    with running_prometheus(
        tmp_path / "prometheus",
        "global: {}\n",
        tsdb,
        "--web.enable-remote-write-receiver",
        "--storage.tsdb.retention.time=100y",
    ) as url:
        observer = Observer(CONFIG.steps)
        after_collect, stop_sending = _sender()

        async def after_control(service: Service, k: int) -> None:
            await observer.after_control(service, k)
            if k == CONFIG.steps - 1:
                stop_sending()

        settings = {
            "rules": {"files": [rules], "builtin": False},
            "storage": {"query_url": url},
            "remote_write": [{"url": f"{url}/api/v1/write"}],
            "store": {"raw_retention_hours": 1},
        }
        options = LiveOptions(
            settings=settings,
            history=lambda service, load, start: None,  # in Prometheus only
            after_collect=after_collect,
            after_control=after_control,
        )
        remote = _run(trace, tmp_path / "remote", options)
        # What foresight collected reached Prometheus by remote write.
        answer = httpx.get(
            f"{url}/api/v1/query",
            params={
                "query": "count_over_time(foresight_workload_cpu_usage_cores[4h])",
                "time": LIVE_START + CONFIG.days * 86_400,
            },
        ).json()
    [collected] = answer["data"]["result"]
    # One sample a minute: the pre-roll's and every scored step's reached Prometheus.
    assert int(collected["value"][1]) >= CONFIG.steps, collected

    assert np.array_equal(remote.demand, embedded.demand)
    differ = np.flatnonzero(remote.replicas != embedded.replicas)
    assert differ.size == 0, f"replica counts differ at steps {differ[:10].tolist()}"
    assert observer.firing == embedded_alerts.firing
    # The three-hour averages, read from Prometheus for all but the last hour, are equal.
    assert not np.isnan(embedded_alerts.averages).any()
    np.testing.assert_array_equal(observer.averages, embedded_alerts.averages)
