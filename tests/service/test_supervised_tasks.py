"""A crash injected into each task of the running service, beyond those of
``tests/controller/test_supervision.py`` (leader, rule engine, store flusher: fatal; a
collection step: retried):

- the notifier is fatal: the service stops in order and ``run`` raises ServiceFailed;
- a reconcile step is retried on the next interval, as a collection step is: logged with its
  traceback, never fatal.

The HTTP server is no task of its own: a handler that raises answers 500 and the server goes
on; a watch of one kind restarts alone (``tests/service/test_watch_timeouts.py``).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from autoscaler.service import ServiceFailed
from tests.controller.conftest import open_rig
from tests.controller.test_supervision import _crashing


async def test_a_dead_notifier_stops_the_service(tmp_path: Path) -> None:
    async with open_rig(tmp_path, history=()) as rig:
        await rig.service.close()
        service = rig.service = rig.make_service()
        service.alerts.delivery.run = _crashing  # type: ignore[method-assign]
        stop = asyncio.Event()
        expected = (
            "task alerts failed: NotifierFailed: notification delivery ended: "
            "RuntimeError: injected"
        )
        with pytest.raises(ServiceFailed, match=expected):
            await asyncio.wait_for(service.run(stop), 30)
        # Flushed and closed: a new service opens the store.
        rig.service = rig.make_service()
        await rig.service.start()


async def test_a_failed_reconcile_is_retried_with_its_traceback_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_rig(tmp_path, history=()) as rig:
        calls = 0

        async def broken() -> None:
            nonlocal calls
            calls += 1
            raise RuntimeError("injected")

        rig.service.controller.reconcile_all = broken  # type: ignore[method-assign]
        stop = asyncio.Event()
        interval = rig.service.settings.controller.interval_seconds
        loop = asyncio.create_task(rig.service._every(interval, rig.service.control_once, stop))
        for _ in range(3):
            for _ in range(50):  # let the step run and go to sleep on the clock
                await asyncio.sleep(0)
            rig.clock.advance(interval)
        stop.set()
        rig.clock.advance(interval)
        await asyncio.wait_for(loop, 5)
        assert calls >= 3
        failed = [r for r in caplog.records if "control_once failed" in r.getMessage()]
        assert failed and all(r.levelno == logging.ERROR and r.exc_info for r in failed)
