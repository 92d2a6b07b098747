"""Supervised tasks: a task that dies stops the rest, with its failure recorded."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runtime.supervise import Supervisor


async def _forever(stop: asyncio.Event) -> None:
    await stop.wait()


async def _crash() -> None:
    await asyncio.sleep(0)
    raise RuntimeError("boom")


async def test_a_crash_is_logged_recorded_and_stops_everything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    supervisor = Supervisor(stop)
    supervisor.spawn("steady", _forever(stop))
    supervisor.spawn("broken", _crash())
    await asyncio.wait_for(stop.wait(), 5)
    await supervisor.wait()
    assert supervisor.failure is not None
    assert str(supervisor.failure) == "task broken failed: RuntimeError: boom"
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None  # the traceback is in the log


async def test_a_task_that_returns_before_the_stop_is_a_failure() -> None:
    stop = asyncio.Event()
    supervisor = Supervisor(stop)

    async def quits() -> None:
        return None

    supervisor.spawn("quits", quits())
    await asyncio.wait_for(stop.wait(), 5)
    assert str(supervisor.failure) == "task quits ended unexpectedly"


async def test_a_clean_stop_and_cancelled_tasks_are_no_failure() -> None:
    stop = asyncio.Event()
    supervisor = Supervisor(stop)
    supervisor.spawn("steady", _forever(stop))
    supervisor.spawn("endless", asyncio.sleep(3600))
    stop.set()
    await supervisor.wait(cancel=("endless",))
    assert supervisor.failure is None
