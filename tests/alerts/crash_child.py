"""A notifier process for the crash test: queue one notification per alert, deliver them.

``python crash_child.py STATE_DIR URL N [KILL_AFTER_ENQUEUES]``. The optional last argument
makes the process SIGKILL itself right after that many notifications were queued.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from alerts.notify.delivery import Delivery
from alerts.notify.dispatch import Dispatcher
from alerts.notify.model import NotifyAlert
from alerts.notify.outbox import Outbox
from alerts.notify.silences import Silences
from alerts.settings import NotifySettings
from runtime.clock import RealClock


async def main(state: Path, url: str, n: int, kill_after: int) -> None:
    settings = NotifySettings.model_validate(
        {
            "receivers": [{"name": "hook", "webhook_configs": [{"url": url}]}],
            "route": {"receiver": "hook", "group_by": ["n"], "group_wait": 0},
            "delivery": {"initial_backoff_seconds": 0.05, "jitter": 0},
        }
    )
    clock = RealClock()
    outbox = Outbox(state)
    if kill_after:
        enqueue = outbox.enqueue

        def enqueue_then_die(*args: object, **kwargs: object) -> object:
            entry = enqueue(*args, **kwargs)  # type: ignore[arg-type]
            if len(outbox.pending) >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return entry

        outbox.enqueue = enqueue_then_die  # type: ignore[method-assign,assignment]
    dispatcher = Dispatcher(settings, outbox, Silences(state, 1), state)
    now_ms = round(clock.now() * 1000)
    start = 1_767_225_600_000
    alerts = [
        NotifyAlert((("alertname", "A"), ("n", str(i))), (), start, now_ms + 3_600_000)
        for i in range(n)
    ]
    dispatcher.put(alerts, now_ms)
    queued = dispatcher.flush(now_ms)
    print(f"queued {queued}", flush=True)
    delivery = Delivery(dispatcher.targets, outbox, clock, settings.delivery)
    task = asyncio.create_task(delivery.run())
    while outbox.pending:  # noqa: ASYNC110 - the outbox offers no event to wait on
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await delivery.aclose()
    outbox.close()


if __name__ == "__main__":
    kill = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), kill))
