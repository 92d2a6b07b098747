from __future__ import annotations

import asyncio
import threading

import pytest

from runtime.clock import Clock, RealClock, VirtualClock, in_thread, to_datetime


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(RealClock(), Clock)
    assert isinstance(VirtualClock(), Clock)


def test_manual_advance_wakes_sleepers_in_order() -> None:
    async def scenario() -> list[str]:
        clock = VirtualClock(start=100.0, autoadvance=False)
        woke: list[str] = []

        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append(f"{name}@{clock.now():g}")

        tasks = [asyncio.create_task(sleeper("b", 20)), asyncio.create_task(sleeper("a", 10))]
        await asyncio.sleep(0)
        clock.advance(15)
        await asyncio.sleep(0)
        assert woke == ["a@115"]
        clock.advance(5)
        await asyncio.gather(*tasks)
        return woke

    assert asyncio.run(scenario()) == ["a@115", "b@120"]


async def test_full_speed_time_jumps_to_the_next_sleeper() -> None:
    clock = VirtualClock(start=0.0)
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(5):
            await clock.sleep(3600)
            ticks.append(clock.now())

    await asyncio.wait_for(ticker(), timeout=5)
    assert ticks == [3600, 7200, 10800, 14400, 18000]
    await clock.aclose()


async def test_full_speed_interleaves_tasks_by_virtual_time() -> None:
    clock = VirtualClock(start=0.0)
    log: list[tuple[str, float]] = []

    async def every(name: str, period: float, n: int) -> None:
        for _ in range(n):
            await clock.sleep(period)
            log.append((name, clock.now()))

    await asyncio.gather(every("fast", 10, 3), every("slow", 25, 1))
    assert log == [("fast", 10), ("fast", 20), ("slow", 25), ("fast", 30)]
    await clock.aclose()


async def test_hold_stops_time_from_jumping() -> None:
    clock = VirtualClock(start=0.0)
    sleeper = asyncio.create_task(clock.sleep(60))
    with clock.hold():
        for _ in range(50):
            await asyncio.sleep(0)
        assert clock.now() == 0 and not sleeper.done()
    await asyncio.wait_for(sleeper, timeout=5)
    assert clock.now() == 60
    await clock.aclose()


async def test_speed_factor_runs_faster_than_real_time() -> None:
    clock = VirtualClock(start=0.0, speed=1000.0)
    await clock.sleep(10)  # 10 ms of real time
    assert clock.now() >= 10
    clock.set_speed(None)
    frozen = clock.now()
    assert clock.now() == frozen


def test_time_cannot_go_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        VirtualClock().advance(-1)
    with pytest.raises(ValueError, match="speed"):
        VirtualClock(speed=0)


def test_to_datetime_is_utc() -> None:
    assert to_datetime(0).isoformat() == "1970-01-01T00:00:00+00:00"


async def test_virtual_time_waits_for_work_in_a_thread() -> None:
    clock = VirtualClock(start=100.0)
    sleeper = asyncio.ensure_future(clock.sleep(5))
    release = threading.Event()
    seen: list[float] = []

    def work() -> int:
        release.wait(10)  # real work takes real time
        seen.append(clock.now())
        return 7

    job = asyncio.ensure_future(in_thread(clock, work))
    threading.Timer(0.1, release.set).start()
    done, _ = await asyncio.wait({sleeper, job}, return_when=asyncio.FIRST_COMPLETED)
    # Held while the thread ran: the sleeper's deadline did not pass meanwhile.
    assert done == {job} and job.result() == 7 and seen == [100.0]
    await sleeper
    assert clock.now() == 105.0
    await clock.aclose()
