"""runtime.gil.PerTurn: at most so many callers resume per turn of the event loop, in the
order they came, and a cancelled waiter gives its place to the next."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from runtime.gil import PerTurn
from tests.support.turns import Turns


async def _passes(gate: PerTurn, callers: int) -> list[tuple[int, int]]:
    """(caller, turn it went through), in the order they went through."""
    turns = Turns()
    went: list[tuple[int, int]] = []

    async def caller(i: int) -> None:
        await gate.wait()
        went.append((i, turns.n))

    try:
        async with asyncio.TaskGroup() as group:
            for i in range(callers):
                group.create_task(caller(i))
    finally:
        turns.stop()
    return went


async def test_no_turn_lets_more_than_the_limit_through_and_all_pass_in_order() -> None:
    went = await _passes(PerTurn(8), 100)
    assert [i for i, _ in went] == list(range(100))
    per_turn = Counter(turn for _, turn in went)
    assert max(per_turn.values()) == 8
    assert len(per_turn) == 13  # 100 callers, 8 a turn


async def test_without_a_limit_a_burst_resumes_in_one_turn() -> None:
    """What the gate prevents: every task created in one turn takes its first step in the
    next, together."""
    went = await _passes(PerTurn(1000), 100)
    assert len(Counter(turn for _, turn in went)) == 1


async def test_a_cancelled_waiter_gives_its_place_to_the_next() -> None:
    gate = PerTurn(1)
    first, second, third = (asyncio.ensure_future(gate.wait()) for _ in range(3))
    await asyncio.sleep(0)  # their first steps: the first went through, two wait
    assert first.done() and not second.done()
    second.cancel()
    await asyncio.wait_for(third, timeout=5)
    assert second.cancelled()


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="PerTurn: limit must be at least 1, not 0"):
        PerTurn(0)
