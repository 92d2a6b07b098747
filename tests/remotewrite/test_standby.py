"""A standby passes its batches over: the leader sends the same series, and two writers of one
series would collide at the receiver. When it leads, it sends what it collects from then on."""

from __future__ import annotations

import asyncio
import contextlib

from remotewrite.queue import QueueManager
from runtime.clock import VirtualClock
from tests.remotewrite.conftest import append_steps, count_on_prometheus, queue_settings, wait_for
from tests.remotewrite.receiver import Receiver
from tsdb import Store


async def test_a_standby_sends_nothing_and_a_new_leader_sends_from_then_on(
    store: Store, clock: VirtualClock, receiver: Receiver, prometheus: str
) -> None:
    leading = False
    queue = QueueManager(
        queue_settings(receiver.url), store.settings.data_dir, clock, may_send=lambda: leading
    )
    task = asyncio.create_task(queue.run())
    try:
        await clock.sleep(1)
        standby = append_steps(store, "rw_standby", 50, range(10))
        await wait_for(clock, lambda: queue.stats.samples_passed_over >= standby, what="passed")
        assert queue.stats.samples_sent == 0 and not receiver.seen
        leading = True
        led = append_steps(store, "rw_standby", 50, range(10, 30))
        await wait_for(clock, lambda: queue.stats.samples_sent >= led and queue.idle(), what="sent")
        assert queue.stats.samples_sent == led
        assert queue.stats.samples_passed_over == standby
        families = {f.name: f for f in queue.families()}
        (standby_family,) = [f for n, f in families.items() if "standby" in n]
        assert standby_family.samples[0][1] == standby
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await count_on_prometheus(prometheus, "rw_standby") == led
