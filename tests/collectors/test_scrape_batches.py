"""A cycle's scrapes start a few per turn of the event loop: a thousand targets never make
one long turn (each start's socket calls wait for the interpreter lock while a worker thread
computes), and every target is still scraped once, its outcome in its place."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from collectors.scrape import STARTS_PER_TURN, Scraper, ScrapeTarget
from runtime.clock import VirtualClock
from tests.support.collection import plain_scraper
from tests.support.turns import Turns

START = 1_750_000_000.0
TARGETS = [
    ScrapeTarget(f"node-{i}", f"http://10.0.{i // 250}.{i % 250}:10250/m") for i in range(300)
]


def _scraper(client: httpx.AsyncClient, starts_per_turn: int | None = None) -> Scraper:
    clock = VirtualClock(start=START, autoadvance=False)
    return plain_scraper(client, clock, concurrency=64, starts_per_turn=starts_per_turn)


async def _fetches_per_turn(
    starts_per_turn: int | None = None,
) -> tuple[Counter[int], list[str | None]]:
    """How many fetches began in each turn of a cycle over ``TARGETS``, and the bodies."""
    turns = Turns()
    began: Counter[int] = Counter()

    async def answer(request: httpx.Request) -> httpx.Response:
        began[turns.n] += 1
        await asyncio.sleep(0)  # an answer that takes a turn or two
        return httpx.Response(200, text=request.url.host)

    try:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            outcomes = await _scraper(client, starts_per_turn).scrape_all(TARGETS)
    finally:
        turns.stop()
    return began, [o.body for o in outcomes]


async def test_no_turn_starts_more_than_a_few_fetches() -> None:
    began, bodies = await _fetches_per_turn()
    assert bodies == [t.url.split("/")[2].split(":")[0] for t in TARGETS]
    assert sum(began.values()) == len(TARGETS)
    assert max(began.values()) <= STARTS_PER_TURN


async def test_without_the_limit_the_slots_start_in_one_turn() -> None:
    """What the limit prevents: every free slot of the scraper started at once."""
    began, _ = await _fetches_per_turn(starts_per_turn=10_000)
    assert max(began.values()) == 64


async def test_a_cancelled_cycle_leaves_no_scrape_running() -> None:
    stuck = asyncio.Event()

    async def never(request: httpx.Request) -> httpx.Response:
        await stuck.wait()
        raise AssertionError("never answered")

    async with httpx.AsyncClient(transport=httpx.MockTransport(never)) as client:
        cycle = asyncio.ensure_future(_scraper(client).scrape_all(TARGETS))
        for _ in range(3):  # while it is still creating its tasks
            await asyncio.sleep(0)
        cycle.cancel()
        await asyncio.gather(cycle, return_exceptions=True)
    assert asyncio.all_tasks() == {asyncio.current_task()}
