"""Collectors wired to a simulated cluster, as the service wires them, for tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from collectors.cluster import ClusterWatcher
from collectors.cycle import CollectionCycle, node_endpoints
from collectors.kube import api_client
from collectors.kubelet import KubeletCollector
from collectors.scrape import ScrapeHealth, Scraper
from collectors.settings import CollectorSettings, KubernetesSettings
from runtime.clock import Clock, VirtualClock
from simulator.background import BackgroundCluster
from tsdb import Store

__all__ = ["Collection", "collecting", "plain_scraper"]


@dataclass
class Collection:
    watcher: ClusterWatcher
    kubelets: KubeletCollector
    cycle: CollectionCycle
    health: ScrapeHealth


@asynccontextmanager
async def collecting(
    sim: BackgroundCluster, store: Store, kubeconfig: Path, watch_start: float
) -> AsyncIterator[Collection]:
    """List/watch and kubelet scrapes of ``sim`` into ``store``; collector time is the
    cluster's clock, as it would be the wall clock."""
    assert sim.cluster is not None
    sim.cluster.write_kubeconfig(kubeconfig)
    clock = sim.clock
    settings = CollectorSettings(kubelet_scheme="http", stagger_seconds=0, token_file=None)
    health = ScrapeHealth("kubelet")
    with api_client(KubernetesSettings(kubeconfig=kubeconfig)) as api:
        watcher = ClusterWatcher(api, VirtualClock(start=watch_start), KubernetesSettings())
        watcher.start()
        try:
            await asyncio.wait_for(watcher.wait_synced(), 30)
            async with httpx.AsyncClient() as http:
                scraper = collection_scraper(http, clock, settings, health)
                kubelets = KubeletCollector(
                    scraper, store, clock, settings, lambda: node_endpoints(watcher.model)
                )
                cycle = CollectionCycle(
                    store,
                    clock,
                    watcher.model,
                    kubelets,
                    scrape_health=[health],
                    watch_health=watcher.health,
                )
                yield Collection(watcher, kubelets, cycle, health)
        finally:
            await watcher.stop()


def collection_scraper(
    http: httpx.AsyncClient, clock: Clock, settings: CollectorSettings, health: ScrapeHealth
) -> Scraper:
    """The scraper the collection tests use: eight at once, no stagger, short backoff."""
    return Scraper(
        http,
        clock,
        health,
        concurrency=8,
        timeout_s=5,
        stagger_s=0,
        max_bytes=settings.max_response_bytes,
        backoff_initial_s=1,
        backoff_max_s=5,
    )


def plain_scraper(
    http: httpx.AsyncClient,
    clock: Clock,
    job: str = "kubelet",
    concurrency: int = 4,
    starts_per_turn: int | None = None,
) -> Scraper:
    """A scraper without stagger and with a minute's backoff, for tests of the scraper."""
    limit = {} if starts_per_turn is None else {"starts_per_turn": starts_per_turn}
    return Scraper(
        http,
        clock,
        ScrapeHealth(job),
        concurrency=concurrency,
        timeout_s=5,
        stagger_s=0,
        max_bytes=2**20,
        backoff_initial_s=60,
        backoff_max_s=600,
        **limit,
    )
