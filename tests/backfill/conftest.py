"""A real Prometheus holding a week of a workload's cAdvisor metrics, and the service on the
simulated cluster of the controller tests, with ``history.prometheus_url`` pointing at it.

The week is what the simulated Deployment ``shop/web`` demanded before ``START``, as
Prometheus would have scraped it every 15 s from the kubelets' cAdvisor: a CPU counter per
container of its two pods, growing by the demand, plus series the mapping must leave out (the
pod-level sums, the sandbox, the pods of ``web-api``, a Job ``web-backup`` and a namesake in
another namespace). It is turned into Prometheus blocks by promtool
(:func:`tests.support.prometheus.blocks_from_store`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kubernetes import client as k8s

from autoscaler.resource.crd import crd_manifest
from autoscaler.service import Service
from autoscaler.settings import Settings
from collectors.kube import api_client
from runtime.clock import VirtualClock
from simulator.cluster import SimulatedCluster
from simulator.load import LoadSource
from simulator.scenario import parse_scenario
from tests.controller.conftest import SCENARIO, START, Rig, settings_for
from tests.support.prometheus import blocks_from_store, running_prometheus
from tsdb import Store, StoreSettings

DAY = 86_400.0
SCRAPE = 15.0
WEB_PODS = ("web-5d9f8b7c6d-x7k2p", "web-5d9f8b7c6d-q4zrn")
# (namespace, pod, container, cores): series the workload's query must not read.
DECOYS = (
    ("shop", "web-api-6b7c8d9f5-zx2pq", "app", 2.0),
    ("shop", "web-backup-x7k2p", "job", 1.0),
    ("other", WEB_PODS[0], "app", 4.0),
    ("shop", WEB_PODS[0], "POD", 0.5),
)


def load_of(cluster: SimulatedCluster, name: str = "web") -> LoadSource:
    load = cluster.kubelets.behaviours[("shop", name)].load
    assert load is not None
    return load


def write_cadvisor_week(store: Store, load: LoadSource, days: float = 7.0) -> None:
    """``days`` of cAdvisor CPU counters before ``START``, every 15 s: each interval adds
    its end's demand, split between the two pods, so that ``irate`` gives the demand."""
    times = np.arange(START - days * DAY - 600, START, SCRAPE)
    demand = np.array([max(0.0, load.demand(float(t - START))) for t in times])
    stamps = np.round(times * 1000).astype(np.int64)
    name = "container_cpu_usage_seconds_total"

    def counter(labels: dict[str, str], cores: np.ndarray) -> None:
        ref = store.ref({"__name__": name, **labels})
        store.append_batch(np.full(len(stamps), ref, np.int32), stamps, np.cumsum(cores * SCRAPE))

    for pod in WEB_PODS:
        counter({"namespace": "shop", "pod": pod, "container": "app"}, demand / 2)
        # cAdvisor's pod-level sum: counting it would double the load.
        counter({"namespace": "shop", "pod": pod, "container": ""}, demand / 2)
    for namespace, pod, container, cores in DECOYS:
        counter(
            {"namespace": namespace, "pod": pod, "container": container},
            np.full(len(stamps), cores),
        )
    # Memory, a gauge, every minute (enough for the 60 s grid, and half the blocks to build).
    gauge = "container_memory_working_set_bytes"
    minutes = (stamps % 60_000) == 0
    for pod in WEB_PODS:
        for container in ("app", ""):  # "": cAdvisor's pod-level sum, to be left out
            labels = {"__name__": gauge, "namespace": "shop", "pod": pod, "container": container}
            ref = store.ref(labels)
            values = web_memory(demand[minutes]) / 2
            store.append_batch(np.full(len(values), ref, np.int32), stamps[minutes], values)
    for namespace, pod, container, _ in DECOYS[:3]:
        labels = {"__name__": gauge, "namespace": namespace, "pod": pod, "container": container}
        ref = store.ref(labels)
        count = int(minutes.sum())
        store.append_batch(np.full(count, ref, np.int32), stamps[minutes], np.full(count, 2.0**30))


def web_memory(demand: np.ndarray) -> np.ndarray:
    """The working set of ``web`` (both pods) for a demand in cores."""
    return (128 + 64 * demand) * 2.0**20


@pytest.fixture(scope="module")
def prometheus_week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus 2.42 serving the week; yields its URL."""
    work = tmp_path_factory.mktemp("prometheus")
    clock = VirtualClock(start=START)
    cluster = SimulatedCluster(parse_scenario(SCENARIO, "controller.yaml"), clock)
    with Store(StoreSettings(data_dir=work / "source"), clock, persistent=False) as store:
        write_cadvisor_week(store, load_of(cluster))
        tsdb = blocks_from_store(store, work)
    with running_prometheus(work, "global: {}\n", tsdb) as url:
        yield url


def history_settings(tmp: Path, kubeconfig: Path, url: str, **history: Any) -> Settings:
    """The controller tests' settings, with the back-fill from ``url``."""
    base = settings_for(tmp, kubeconfig)
    values = base.model_dump()
    values["history"] = {"prometheus_url": url, "retry_initial_seconds": 5, **history}
    return Settings.model_validate(values)


@asynccontextmanager
async def open_backfill_rig(tmp_path: Path, url: str | None, **history: Any) -> AsyncIterator[Rig]:
    """The service on the simulated cluster (no history in its store), started; with ``url``
    the back-fill runs from it, as ``foresight run`` runs it."""
    clock = VirtualClock(start=START, autoadvance=False)
    cluster = SimulatedCluster(parse_scenario(SCENARIO, "controller.yaml"), clock)
    await cluster.start(run_loop=False)
    kubeconfig = tmp_path / "kubeconfig"
    cluster.write_kubeconfig(kubeconfig)
    settings = (
        history_settings(tmp_path, kubeconfig, url, **history)
        if url is not None
        else settings_for(tmp_path, kubeconfig)
    )
    api = api_client(settings.kubernetes)
    crd: Any = crd_manifest()
    await asyncio.to_thread(k8s.ApiextensionsV1Api(api).create_custom_resource_definition, crd)

    def make_service() -> Service:
        return Service(settings, clock, api=api, persistent=True)

    rig = Rig(cluster, clock, api, make_service(), make_service)
    await rig.service.start()
    await rig.service.wait_synced()
    try:
        yield rig
    finally:
        await rig.service.close()
        api.close()
        await cluster.stop()
        await clock.aclose()


@asynccontextmanager
async def backfilling(service: Service) -> AsyncIterator[asyncio.Event]:
    """The service's back-fill worker, running; stopped on exit."""
    assert service.history is not None
    stop = asyncio.Event()
    task = asyncio.create_task(service.history.run(stop))
    try:
        yield stop
    finally:
        # As the service's supervisor does: a query may be waiting on the clock.
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(predicate: Any, seconds: float = 60.0) -> None:
    """Wait for a real server's answers to land (real time: Prometheus is a real process)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the back-fill")
        await asyncio.sleep(0.05)


class Forwarder:
    """A TCP forwarder on ``port`` to ``target`` (host, port): a server that comes up late on
    the address foresight was given."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self._target = target
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
