"""The process a kill -9 test kills: a store and one remote-write queue on the real clock.

``first``: append ``series`` x ``steps`` samples, flush them, send until killed.
``resume``: append nothing, send until everything in the log is delivered, then print the
queue's counters as JSON and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from remotewrite.queue import QueueManager  # noqa: E402
from remotewrite.settings import RemoteWriteSettings  # noqa: E402
from runtime.clock import RealClock  # noqa: E402
from tests.remotewrite.conftest import append_steps  # noqa: E402
from tsdb import Store, StoreSettings  # noqa: E402
from tsdb.wal_readers import load_reader_state  # noqa: E402


async def main(data_dir: Path, url: str, mode: str, series: int, steps: int) -> None:
    clock = RealClock()
    store = Store(StoreSettings(data_dir=data_dir, head_max_samples=1000), clock)
    settings = RemoteWriteSettings(
        url=url,
        name="crash",
        queue_config={
            "min_shards": 2,
            "max_shards": 2,
            "max_samples_per_send": 50,
            "batch_send_deadline_seconds": 0.05,
            "min_backoff_seconds": 0.05,
            "max_backoff_seconds": 0.5,
        },
    )
    print("store open", file=sys.stderr, flush=True)
    queue = QueueManager(settings, data_dir, clock)
    task = asyncio.create_task(queue.run())
    while load_reader_state(data_dir, "crash") is None:
        await asyncio.sleep(0.05)  # the queue has saved its position: appends reach it
        if task.done():
            task.result()
    print("position saved", file=sys.stderr, flush=True)
    if mode == "first":
        append_steps(store, "rw_crash", series, range(steps))
        print("appended", file=sys.stderr, flush=True)
        for _ in range(3600):
            await asyncio.sleep(1)
            print(f"sent {queue.stats}", file=sys.stderr, flush=True)
    while not queue.idle():  # noqa: ASYNC110 - the queue has no event for this; a poll will do
        await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    store.close()
    print(json.dumps(dataclasses.asdict(queue.stats)), flush=True)


if __name__ == "__main__":
    data, url, mode, series, steps = sys.argv[1:]
    asyncio.run(main(Path(data), url, mode, int(series), int(steps)))
