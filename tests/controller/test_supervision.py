"""A supervised task of the running service dies: /readyz says so, the service shuts down in
order (store flushed) and ``run`` ends with ServiceFailed; a failed collection step does not."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from autoscaler.service import Service, ServiceFailed
from runtime.supervise import Supervisor
from tests.controller.conftest import open_rig


def _crashing(*_: Any, **__: Any) -> Any:
    async def crash() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("injected")

    return crash()


INJECT: dict[str, Callable[[Service], None]] = {
    "leader": lambda s: setattr(s.elector, "run", _crashing),
    "alerts": lambda s: setattr(s.alerts, "run", _crashing),
    "flusher": lambda s: setattr(s.store, "run_flusher", _crashing),
}


@pytest.mark.parametrize("task", sorted(INJECT))
async def test_a_dead_task_stops_the_service(tmp_path: Path, task: str) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.service.close()
        service = rig.service = rig.make_service()
        INJECT[task](service)
        stop = asyncio.Event()
        with pytest.raises(ServiceFailed, match=f"task {task} failed: RuntimeError: injected"):
            await asyncio.wait_for(service.run(stop), 30)
        assert service.supervisor is not None and service.supervisor.failure is not None
        # The store was flushed and closed: a new service opens it (the lock is free).
        rig.service = rig.make_service()
        await rig.service.start()


async def test_readiness_fails_once_a_task_died(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        stop = asyncio.Event()
        supervisor = rig.service.supervisor = Supervisor(stop)
        supervisor.spawn("alerts", _crashing())
        await asyncio.wait_for(stop.wait(), 5)
        port = await rig.service.serve_http()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            answer = await http.get("/readyz")
        assert answer.status_code == 503
        assert answer.text == "task alerts failed: RuntimeError: injected\n"


async def test_a_failed_collection_step_is_retried_not_fatal(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        calls = 0

        async def flaky() -> int:
            nonlocal calls
            calls += 1
            raise RuntimeError("one bad cycle")

        rig.service.collect_once = flaky  # type: ignore[method-assign]
        stop = asyncio.Event()
        loop = asyncio.create_task(rig.service._every(15, rig.service.collect_once, stop))
        for _ in range(3):
            for _ in range(50):  # let the step run and go to sleep on the clock
                await asyncio.sleep(0)
            rig.clock.advance(15)
        stop.set()
        rig.clock.advance(15)
        await asyncio.wait_for(loop, 5)
        assert calls >= 3
