"""Remote write from the store's log to a real Prometheus 2.42, counted on both sides: every
sample arrives once, with its labels and value as Prometheus decodes them; a receiver down
for ten minutes loses nothing; 5xx and 429 are retried after their ``Retry-After``, 400
drops the batch and counts it failed."""

from __future__ import annotations

import asyncio
import math

import httpx
import numpy as np

from remotewrite.client import user_agent
from remotewrite.queue import QueueManager
from runtime.clock import VirtualClock
from tests.remotewrite.conftest import (
    START,
    append_steps,
    count_on_prometheus,
    queue_settings,
    running_queue,
    wait_for,
)
from tests.remotewrite.receiver import Receiver, Reply
from tsdb import Store
from tsdb.wal_tail import segments


async def test_every_sample_arrives_once_counted_on_both_sides(
    store: Store, clock: VirtualClock, receiver: Receiver, prometheus: str
) -> None:
    settings = queue_settings(receiver.url, min_shards=3, max_shards=3)
    async with running_queue(settings, store, clock) as queue:
        await clock.sleep(1)  # the queue has its position before anything is appended
        n = append_steps(store, "rw_count", 150, range(40))
        await wait_for(clock, lambda: queue.stats.samples_sent >= n and queue.idle(), what="sent")
        assert queue.stats.samples_sent == n == 6000
        assert queue.stats.samples_failed == queue.stats.samples_retried == 0
        assert len(queue.shards) == 3
    assert await count_on_prometheus(prometheus, "rw_count") == n
    sent = [s for seen in receiver.seen for s in seen.samples]
    assert len(sent) == len(set(sent)) == n
    assert all(len(seen.samples) <= 500 for seen in receiver.seen)
    # A series always goes through one shard, so it reaches Prometheus in time order.
    last: dict[tuple[tuple[str, str], ...], int] = {}
    for labels, t, _ in sent:
        assert t > last.get(labels, -1)
        last[labels] = t
    headers = receiver.seen[0].headers
    assert headers["Content-Encoding"] == "snappy"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert headers["User-Agent"] == user_agent()


async def test_labels_and_values_as_prometheus_decodes_them(
    store: Store, clock: VirtualClock, receiver: Receiver, prometheus: str
) -> None:
    values = [0.0, -0.0, 1e-300, 1.5e300, math.inf, -math.inf, math.nan, 123456.789]
    labels = {"__name__": "rw_round", "path": '/a"b\\c', "unicode": "grüße ☃"}
    ref = store.ref(labels)
    async with running_queue(queue_settings(receiver.url), store, clock) as queue:
        await clock.sleep(1)
        t0 = int(START * 1000)
        for i, v in enumerate(values):
            store.append(ref, t0 + i * 1000, v)
        store.flush()
        await wait_for(clock, lambda: queue.stats.samples_sent == len(values) and queue.idle())
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.get(
            f"{prometheus}/api/v1/query",
            params={"query": "rw_round[1m]", "time": START + 30},
        )
    (series,) = answer.json()["data"]["result"]
    assert series["metric"] == labels
    got = [(t, float(v)) for t, v in series["values"]]
    assert [t for t, _ in got] == [START + i for i in range(len(values))]
    for (_, v), want in zip(got, values, strict=True):
        assert v == want or (math.isnan(v) and math.isnan(want))


async def test_a_receiver_down_for_ten_minutes_loses_nothing(
    store: Store, clock: VirtualClock, receiver: Receiver, prometheus: str
) -> None:
    settings = queue_settings(receiver.url, min_shards=2, max_shards=2)
    async with running_queue(settings, store, clock) as queue:
        await clock.sleep(1)
        await receiver.stop()
        first_segment = segments(store.settings.data_dir)[0]
        n = 0
        for step in range(40):  # ten minutes of 15 s steps, sealing a head every ~7 steps
            n += append_steps(store, "rw_down", 150, range(step, step + 1))
            await clock.sleep(15)
        assert queue.stats.samples_sent == 0
        assert queue.stats.samples_retried > 0
        # The sealed segments stay while the receiver has not had them.
        assert segments(store.settings.data_dir)[0] == first_segment
        await receiver.start()
        await wait_for(clock, lambda: queue.stats.samples_sent >= n and queue.idle(), what="sent")
        assert queue.stats.samples_sent == n
        assert queue.stats.samples_failed == 0
        # Once sent, the next seal lets them go.
        append_steps(store, "rw_after", 1000, range(1))
        assert segments(store.settings.data_dir)[0] > first_segment
    assert await count_on_prometheus(prometheus, "rw_down") == n == 6000
    families = {f.name: f.samples[0][1] for f in queue.families()}
    assert families["foresight_remote_storage_samples_total"] == queue.stats.samples_sent


async def test_5xx_and_429_are_retried_after_retry_after_and_400_drops_the_batch(
    store: Store, clock: VirtualClock, receiver: Receiver, prometheus: str
) -> None:
    settings = queue_settings(receiver.url, max_samples_per_send=100, min_backoff_seconds=0.1)
    receiver.plan = [
        Reply(503, {"Retry-After": "7"}),
        Reply(429, {"Retry-After": "3"}),
        Reply(400),
        Reply(500),
    ]
    async with running_queue(settings, store, clock) as queue:
        await clock.sleep(1)
        refs = np.array([store.ref({"__name__": "rw_codes", "i": str(i)}) for i in range(300)])
        store.append_batch(refs.astype(np.int32), int(START * 1000), np.ones(300))
        store.flush()
        await wait_for(clock, lambda: queue.idle() and queue.stats.samples_sent == 200)
    statuses = [seen.status for seen in receiver.seen]
    assert statuses == [503, 429, 400, 500, 204, 204]
    at = [seen.at for seen in receiver.seen]
    assert at[1] - at[0] >= 7
    assert at[2] - at[1] >= 3
    assert at[4] - at[3] < 1  # no Retry-After: the backoff's first pause
    # The three refused attempts were the same batch; the 500 one was sent again.
    assert receiver.seen[0].body == receiver.seen[1].body == receiver.seen[2].body
    assert receiver.seen[3].body == receiver.seen[4].body
    assert queue.stats.samples_failed == 100
    assert queue.stats.samples_retried == 300
    assert queue.stats.samples_sent == 200
    assert await count_on_prometheus(prometheus, "rw_codes") == 200


async def test_a_new_shard_count_drains_the_old_shards_first(
    store: Store, clock: VirtualClock, receiver: Receiver, prometheus: str
) -> None:
    three = queue_settings(receiver.url, min_shards=3, max_shards=3)
    async with running_queue(three, store, clock) as queue:
        await clock.sleep(1)
        n = append_steps(store, "rw_reshard", 100, range(10))
        await wait_for(clock, lambda: queue.stats.samples_sent == n and queue.idle())
    # Restarted with at most two shards: it resumes with the saved three, then drains them
    # and goes on with two, while samples keep coming.
    two = queue_settings(receiver.url, min_shards=2, max_shards=2)
    async with running_queue(two, store, clock) as queue:
        await clock.sleep(1)
        assert len(queue.shards) == 3
        for step in range(10, 30):
            n += append_steps(store, "rw_reshard", 100, range(step, step + 1))
            await clock.sleep(1)
        assert len(queue.shards) == 2
        await wait_for(clock, lambda: queue.idle() and queue.stats.samples_sent == n - 1000)
    assert await count_on_prometheus(prometheus, "rw_reshard") == n == 3000
    sent = [s for seen in receiver.seen for s in seen.samples]
    assert len(sent) == len(set(sent)) == n


async def test_a_stop_lets_the_batch_in_flight_finish_and_a_restart_sends_nothing_twice(
    store: Store, clock: VirtualClock, receiver: Receiver, prometheus: str
) -> None:
    settings = queue_settings(receiver.url, max_samples_per_send=100)
    queue = QueueManager(settings, store.settings.data_dir, clock)
    task = asyncio.create_task(queue.run())
    await clock.sleep(1)
    receiver.gate.clear()
    n = append_steps(store, "rw_stop", 300, range(1))
    await asyncio.wait_for(receiver.waiting.wait(), 30)
    queue.stop()  # a batch is in flight: it is finished, nothing more is started
    receiver.gate.set()
    await asyncio.wait_for(task, 30)
    assert queue.stats.samples_sent == 100
    (shard,) = queue.shards
    assert shard.inflight is None and shard.pending == 200
    async with running_queue(settings, store, clock) as again:
        await wait_for(clock, lambda: again.idle() and again.stats.samples_sent == 200)
    sent = [s for seen in receiver.seen for s in seen.samples]
    assert len(sent) == len(set(sent)) == n
    assert all(seen.status == 204 for seen in receiver.seen)
    assert await count_on_prometheus(prometheus, "rw_stop") == n


async def test_past_its_bound_a_queue_skips_the_deleted_log_and_counts_it(
    store: Store, clock: VirtualClock, receiver: Receiver, prometheus: str
) -> None:
    settings = queue_settings(receiver.url, max_wal_held_bytes=0)
    async with running_queue(settings, store, clock) as queue:
        await clock.sleep(1)
        await receiver.stop()
        n = append_steps(store, "rw_bound", 500, range(7))  # three seals, nothing held
        await clock.sleep(30)
        await receiver.start()
        await wait_for(clock, lambda: queue.idle() and queue.stats.segments_skipped > 0)
        sent = queue.stats.samples_sent
        families = {f.name: f.samples[0][1] for f in queue.families()}
    assert families["foresight_remote_storage_wal_segments_skipped_total"] > 0
    # What the receiver has is what was sent: the head's last part, read before the outage
    # or after it, never the deleted segments.
    assert 0 < sent < n
    assert await count_on_prometheus(prometheus, "rw_bound") == sent


async def test_a_batch_cut_off_by_cancellation_is_sent_again_whole(
    store: Store, clock: VirtualClock, receiver: Receiver, prometheus: str
) -> None:
    settings = queue_settings(receiver.url, max_samples_per_send=100)
    queue = QueueManager(settings, store.settings.data_dir, clock)
    task = asyncio.create_task(queue.run())
    await clock.sleep(1)
    receiver.gate.clear()
    n = append_steps(store, "rw_cut", 300, range(1))
    await asyncio.wait_for(receiver.waiting.wait(), 30)
    task.cancel()  # as a kill would: the batch in flight is never acknowledged
    await asyncio.gather(task, return_exceptions=True)
    receiver.gate.set()
    await wait_for(clock, lambda: receiver.seen[0].status != 0)
    first = receiver.seen[0].body
    async with running_queue(settings, store, clock) as again:
        await wait_for(clock, again.idle, what="resumed queue idle")
    assert receiver.seen[1].body == first  # the same batch, whole
    assert again.stats.samples_sent + again.stats.samples_failed == n
    # Prometheus had it: sent again, it is refused as out of order, and nothing is lost.
    assert await count_on_prometheus(prometheus, "rw_cut") == n
