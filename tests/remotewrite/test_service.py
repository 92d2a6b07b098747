"""``foresight run`` with ``remote_write``: what the service collects from a simulated cluster
reaches a real Prometheus through its store's log; stopped mid-way, the queue resumes from
its saved position, and in the end Prometheus holds every sample the store holds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np

from autoscaler.service import Service
from remotewrite.queue import QueueManager
from remotewrite.settings import RemoteWriteSettings
from tests.controller.conftest import START, open_rig
from tsdb import Store, StoreSettings, stale_mask


async def _count(prometheus: str) -> int:
    """Samples Prometheus holds, name by name (``count_over_time`` drops the name, so one
    query over every name would find series that differ only in it)."""
    total = 0
    async with httpx.AsyncClient(timeout=30) as client:
        names = (await client.get(f"{prometheus}/api/v1/label/__name__/values")).json()["data"]
        for name in names:
            answer = await client.get(
                f"{prometheus}/api/v1/query",
                params={
                    "query": f'sum(count_over_time({{__name__="{name}"}}[1d]))',
                    "time": START + 43_200,
                },
            )
            result = answer.json()["data"]["result"]
            total += int(float(result[0]["value"][1])) if result else 0
    return total


async def test_foresight_run_sends_what_it_collects(tmp_path: Path, prometheus: str) -> None:
    url = f"{prometheus}/api/v1/write"
    async with open_rig(tmp_path, history=()) as rig:
        await rig.service.close()
        settings = rig.service.settings.model_copy(
            update={"remote_write": [RemoteWriteSettings(url=url, name="prom")]}
        )
        service = rig.service = Service(settings, rig.clock, api=rig.api, persistent=True)
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        for _ in range(60):  # two minutes of collection, on the rig's hand-driven clock
            await asyncio.sleep(0.05)
            rig.clock.advance(2)
        assert service.remote_write.queues[0].stats.samples_sent > 0
        metrics = service.registry.get_sample_value(
            "foresight_remote_storage_samples_total", {"remote_name": "prom", "url": url}
        )
        assert metrics == service.remote_write.queues[0].stats.samples_sent
        stop.set()
        rig.clock.advance(60)
        await asyncio.wait_for(running, 60)
        rig.service = rig.make_service()
        await rig.service.start()
        data_dir = settings.store.data_dir

    # What was left unsent at the stop goes from the saved position, with no store open.
    queue = QueueManager(settings.remote_write[0], data_dir, rig.clock)
    task = asyncio.create_task(queue.run())
    for _ in range(400):
        await asyncio.sleep(0.05)
        rig.clock.advance(1)
        if queue.idle():
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert queue.idle()

    with Store(StoreSettings(data_dir=data_dir), rig.clock) as store:
        stored = store.select([], 0, 2**62)
    held = sum(int((~stale_mask(s.values)).sum()) for s in stored)
    assert held > 100
    assert await _count(prometheus) == held
    assert np.all([len(s.labels) for s in stored])
