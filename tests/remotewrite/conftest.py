"""Fixtures of the remote-write tests: a real Prometheus 2.42 receiving remote write, a
loopback front of it that fails on purpose, a store on a virtual clock, and helpers that
append, wait on the clock and count samples on the receiver's side."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from remotewrite.queue import QueueManager
from remotewrite.settings import RemoteWriteSettings
from runtime.clock import VirtualClock
from tests.remotewrite.receiver import Receiver
from tests.support.prometheus import running_prometheus
from tsdb import Store, StoreSettings

START = 1_700_000_000.0


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    """A real Prometheus with its remote-write receiver on; its base URL."""
    with running_prometheus(
        tmp_path / "prometheus", "global: {}\n", None, "--web.enable-remote-write-receiver"
    ) as url:
        yield url


@pytest.fixture
async def clock() -> AsyncIterator[VirtualClock]:
    c = VirtualClock(start=START)
    yield c
    await c.aclose()


@pytest.fixture
async def receiver(prometheus: str, clock: VirtualClock) -> AsyncIterator[Receiver]:
    front = Receiver(prometheus, clock)
    await front.start()
    yield front
    await front.aclose()


@pytest.fixture
def store(tmp_path: Path, clock: VirtualClock) -> Iterator[Store]:
    s = Store(StoreSettings(data_dir=tmp_path / "store", head_max_samples=1000), clock)
    yield s
    s.close()


def queue_settings(url: str, **queue: object) -> RemoteWriteSettings:
    """One receiver with small, fast batches unless ``queue`` says otherwise."""
    config: dict[str, object] = {
        "max_samples_per_send": 500,
        "batch_send_deadline_seconds": 1.0,
        "min_backoff_seconds": 0.5,
        "max_backoff_seconds": 5.0,
        **queue,
    }
    return RemoteWriteSettings(url=url, name="test", queue_config=config)


@contextlib.asynccontextmanager
async def running_queue(
    settings: RemoteWriteSettings, store: Store, clock: VirtualClock
) -> AsyncIterator[QueueManager]:
    queue = QueueManager(settings, store.settings.data_dir, clock)
    task = asyncio.create_task(queue.run())
    try:
        yield queue
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def append_steps(
    store: Store, metric: str, series: int, steps: range, step_ms: int = 15_000
) -> int:
    """``series`` series of ``metric``, one sample per step at ``START + step * step_ms``,
    value ``step + i / 1000``, each step flushed to the log; how many samples."""
    refs = np.array(
        [store.ref({"__name__": metric, "i": f"{i:04d}"}) for i in range(series)], np.int32
    )
    for step in steps:
        values = step + np.arange(series) / 1000
        store.append_batch(refs, int(START * 1000) + step * step_ms, values)
        store.flush()
    return series * len(steps)


async def wait_for(
    clock: VirtualClock, done: Callable[[], bool], seconds: float = 3600, what: str = ""
) -> None:
    """Wait on the clock (virtual seconds) until ``done()``; fail after ``seconds``."""
    deadline = clock.now() + seconds
    while not done():
        if clock.now() > deadline:
            raise AssertionError(f"not within {seconds} s (virtual): {what}")
        await clock.sleep(0.5)


async def count_on_prometheus(url: str, metric: str) -> int:
    """How many samples of ``metric`` the receiver holds (a day around the test's start)."""
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.get(
            f"{url}/api/v1/query",
            params={
                "query": f'sum(count_over_time({{__name__="{metric}"}}[1d]))',
                "time": START + 43_200,
            },
        )
    answer.raise_for_status()
    result = answer.json()["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0
