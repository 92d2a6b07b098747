"""The scraper's state of targets that are gone: a deleted node's backoff and health are
dropped, whichever collector scrapes it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from collectors.kubelet import NodeEndpoint
from collectors.kubelet_stats import CadvisorCollector
from collectors.scrape import ScrapeTarget
from collectors.settings import CollectorSettings
from runtime.clock import VirtualClock
from tests.support.collection import plain_scraper
from tsdb import Store, StoreSettings

START = 1_750_000_000.0
NODE = NodeEndpoint("node-1", (("InternalIP", "10.0.0.7"),), 10250)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(500))
    ) as client:
        yield client


async def test_a_deleted_nodes_backoff_is_forgotten_by_the_cadvisor_collector(
    client: httpx.AsyncClient,
) -> None:
    clock = VirtualClock(start=START, autoadvance=False)
    store = Store(StoreSettings(), clock, persistent=False)
    scraper = plain_scraper(client, clock, "cadvisor")
    nodes = [NODE]
    settings = CollectorSettings(token_file=None, stagger_seconds=0)
    collector = CadvisorCollector(scraper, store, clock, settings, lambda: list(nodes), 30)
    try:
        await collector.collect()  # fails: 60 s of backoff
        await collector.collect()  # still in backoff: not asked
        assert scraper.health.errors == {"server_error": 1, "backoff": 1}
        nodes.clear()  # the node is deleted
        await collector.collect()
        assert scraper.health.up == {}
        nodes.append(NODE)  # and a node of that name joins: asked at once
        await collector.collect()
        assert scraper.health.errors == {"server_error": 2, "backoff": 1}
    finally:
        store.close()


async def test_scrape_all_forgets_the_backoff_of_targets_gone(client: httpx.AsyncClient) -> None:
    clock = VirtualClock(start=START, autoadvance=False)
    scraper = plain_scraper(client, clock, "kubelet")
    target = ScrapeTarget("node-1", "http://10.0.0.7:10250/metrics/resource")
    [first] = await scraper.scrape_all([target])
    [again] = await scraper.scrape_all([target])
    assert (first.reason, again.reason) == ("server_error", "backoff")
    await scraper.scrape_all([])
    [back] = await scraper.scrape_all([target])
    assert back.reason == "server_error"
