"""History from a real Prometheus, through the service on the simulated cluster, end to end."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from autoscaler.backfill.gate import BackfillGate
from autoscaler.demo.run import write_history
from runtime import names
from tests.backfill.conftest import (
    Forwarder,
    backfilling,
    load_of,
    open_backfill_rig,
    until,
    web_memory,
)
from tests.controller.conftest import START, Rig, horizontal, pas
from tests.support.prometheus import free_port
from tsdb import Store
from tsdb.labels import eq

WEB_CPU = [
    eq("__name__", names.WORKLOAD_CPU_CORES),
    eq("namespace", "shop"),
    eq("workload_kind", "Deployment"),
    eq("workload", "web"),
]


def gate_of(rig: Rig) -> BackfillGate:
    assert rig.service.history is not None
    return rig.service.history


def pending(gate: BackfillGate) -> float:
    family = next(f for f in gate.families() if f.name == names.HISTORY_BACKFILL_PENDING)
    return float(family.samples[0][1])


def web_stamps(store: Store) -> np.ndarray:
    found = store.select(WEB_CPU, 0, 2**62)
    return np.concatenate([s.timestamps for s in found]) if found else np.zeros(0, np.int64)


async def conditions(rig: Rig) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (await rig.status("web")).get("conditions", [])}


async def backfilled_reason(rig: Rig, reason: str, seconds: float = 60.0) -> None:
    """Wait for the gate to write ``HistoryBackfilled`` with ``reason``: its worker writes
    the condition once the copy is done, after the pending gauge has dropped, so this must
    wait while the worker runs (real time: Prometheus is a real process)."""
    deadline = time.monotonic() + seconds
    while (found := (await conditions(rig)).get("HistoryBackfilled", {})).get("reason") != reason:
        if time.monotonic() > deadline:
            raise AssertionError(f"HistoryBackfilled stayed {found!r}, never {reason!r}")
        await asyncio.sleep(0.05)


async def test_a_week_from_prometheus_forecasts_as_the_week_collected_natively(
    tmp_path: Any, prometheus_week: str
) -> None:
    spec = pas("web", horizontal(mode="Recommend"))
    async with open_backfill_rig(tmp_path / "native", None) as native:
        write_history(native.service.store, load_of(native.cluster), "shop", "web", START, 7.0)
        await native.create(spec)
        await native.step(60)
        want = await native.status("web")
        # A week of history: ready (without it, "forecasting reactively").
        assert (await conditions(native))["ForecastReady"]["status"] == "True"

    async with open_backfill_rig(tmp_path / "backfill", prometheus_week) as rig:
        gate = gate_of(rig)
        await rig.create(spec)
        async with backfilling(rig.service):
            await rig.step(60)
            # Held back from the controller while its history is read.
            assert "forecast" not in await rig.status("web")
            await until(lambda: pending(gate) == 0)
            await rig.service.control_once()
            await backfilled_reason(rig, "Backfilled")
        got = await rig.status("web")
        found = await conditions(rig)
        assert found["HistoryBackfilled"]["status"] == "True"
        assert found["HistoryBackfilled"]["reason"] == "Backfilled"
        assert found["ForecastReady"]["status"] == "True"
        assert got["forecast"]["model"] == want["forecast"]["model"]
        assert got["forecast"]["load"] == pytest.approx(want["forecast"]["load"], rel=0.02)
        assert got["desiredReplicas"] == want["desiredReplicas"]
        stamps = web_stamps(rig.service.store)
        # A week on the 60 s grid (the first live scrape gives no rate yet).
        assert len(stamps) == len(np.unique(stamps)) >= 7 * 1440
        # On /metrics, as Prometheus scrapes it.
        labels = {"namespace": "shop", "workload_kind": "Deployment", "workload": "web"}
        registry = rig.service.registry
        copied = registry.get_sample_value(
            names.HISTORY_BACKFILL_SAMPLES, labels | {"resource": "cpu"}
        )
        assert copied == len(stamps)
        assert registry.get_sample_value(names.HISTORY_BACKFILL_PENDING) == 0
        assert registry.get_sample_value(names.HISTORY_BACKFILL_QUERIES, {"result": "error"}) == 0
        assert registry.get_sample_value(names.HISTORY_BACKFILL_QUERIES, {"result": "ok"}) >= 28

        # A restart: nothing is missing, nothing is copied again.
        await rig.service.close()
        rig.service = rig.make_service()
        await rig.service.start()
        await rig.service.wait_synced()
        gate = gate_of(rig)
        async with backfilling(rig.service):
            await rig.service.control_once()
            await until(lambda: pending(gate) == 0)
            await rig.service.control_once()
            await backfilled_reason(rig, "HistoryPresent")
        again = web_stamps(rig.service.store)
        assert len(again) == len(np.unique(again)) == len(stamps)
        assert gate.queries == {"ok": 0, "error": 0}
        found = await conditions(rig)
        assert found["HistoryBackfilled"]["reason"] == "HistoryPresent"
        assert found["ForecastReady"]["status"] == "True"


async def test_prometheus_down_is_retried_with_backoff_and_said_on_the_status(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="autoscaler.backfill.gate")
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with open_backfill_rig(tmp_path, url, wait_seconds=60) as rig:
        gate = gate_of(rig)
        await rig.create(pas("web", horizontal(mode="Recommend")))
        async with backfilling(rig.service):
            for _ in range(40):
                await rig.step(30)
                await asyncio.sleep(0.05)  # the refused connections are real I/O
                if gate.queries["error"] >= 3:
                    break
            assert gate.queries["error"] >= 3
            found = await conditions(rig)
        backfilled = found["HistoryBackfilled"]
        assert backfilled["status"] == "False"
        assert backfilled["reason"] == "PrometheusUnavailable"
        assert "unreachable" in backfilled["message"] and "in " in backfilled["message"]
        # The controller went on without it once the wait was over.
        assert found["AbleToScale"]["status"] == "True"
        assert found["ForecastReady"]["status"] == "False"
        attempts = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
        assert any("(attempt 2)" in m for m in attempts), attempts


async def test_history_that_arrives_after_the_wait_is_taken_up(
    tmp_path: Any, prometheus_week: str
) -> None:
    port = free_port()
    target = urlsplit(prometheus_week)
    assert target.hostname is not None and target.port is not None
    forwarder = Forwarder(port, (target.hostname, target.port))
    async with open_backfill_rig(tmp_path, f"http://127.0.0.1:{port}", wait_seconds=60) as rig:
        gate = gate_of(rig)
        await rig.create(pas("web", horizontal(mode="Recommend")))
        async with backfilling(rig.service):
            # Down past the wait: the controller goes on without the history.
            for _ in range(4):
                await rig.step(30)
                await asyncio.sleep(0.05)
            assert gate.queries["error"] >= 1
            found = await conditions(rig)
            assert found["ForecastReady"]["status"] == "False"
            assert found["HistoryBackfilled"]["reason"] == "PrometheusUnavailable"
            await forwarder.start()
            try:
                for _ in range(100):
                    if pending(gate) == 0:
                        break
                    await rig.step(15)
                    await asyncio.sleep(0.05)
                assert pending(gate) == 0
                # One cycle without it (the controller forgets what it read), then with it.
                await rig.service.control_once()
                await rig.service.control_once()
                await backfilled_reason(rig, "Backfilled")
            finally:
                await forwarder.stop()
        found = await conditions(rig)
        assert found["HistoryBackfilled"]["reason"] == "Backfilled"
        assert found["ForecastReady"]["status"] == "True"
        assert "forecast" in await rig.status("web")


async def test_a_memory_autoscaler_gets_the_memory_series_and_only_it(
    tmp_path: Any, prometheus_week: str
) -> None:
    spec = pas("web", horizontal(mode="Recommend"))
    spec["spec"]["horizontal"]["metric"] = {"type": "Memory", "targetUtilization": 80}
    async with open_backfill_rig(tmp_path, prometheus_week) as rig:
        gate = gate_of(rig)
        await rig.create(spec)
        async with backfilling(rig.service):
            await rig.service.control_once()
            await until(lambda: pending(gate) == 0)
            # Before the worker stops: it writes the condition after the gauge drops.
            await backfilled_reason(rig, "Backfilled")
        store = rig.service.store
        memory = [eq("__name__", names.WORKLOAD_MEMORY), *WEB_CPU[1:]]
        (series,) = store.select(memory, 0, 2**62)
        at = START - 6 * 3600
        (i,) = np.flatnonzero(series.timestamps == round(at * 1000))
        want = web_memory(np.array([load_of(rig.cluster).demand(at - START)]))[0]
        assert series.values[i] == pytest.approx(want, rel=1e-9)
        assert len(series.values) >= 7 * 1440
        assert store.select(WEB_CPU, 0, 2**62) == []
