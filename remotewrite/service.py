"""Every configured remote-write queue of one store, run together.

A queue is known by its name (``name``, or one derived from the URL); its saved position
lives beside the store's log. A queue removed from the settings has its position forgotten at
start (also when none is left), so the store no longer keeps log segments for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from remotewrite.queue import QueueManager
from remotewrite.settings import RemoteWriteSettings
from runtime.clock import Clock, in_thread, sleep_or_stop
from runtime.families import Family
from tsdb.wal_readers import forget_reader, reader_names

log = logging.getLogger(__name__)

__all__ = ["RemoteWrite"]


class RemoteWrite:
    """The queues of ``settings``, sending the log of the store in ``data_dir`` (None: a
    store without files, which has no log to send: no queue runs)."""

    def __init__(
        self,
        settings: Sequence[RemoteWriteSettings],
        data_dir: Path | None,
        clock: Clock,
        fsync: bool = False,
        may_send: Callable[[], bool] = lambda: True,
    ) -> None:
        """``may_send()`` says whether this replica sends now: a standby passes its batches
        over (the leader sends the same series), shards all send (their series differ)."""
        seen: set[str] = set()
        for entry in settings:
            if entry.queue_name in seen:
                raise ValueError(
                    f"remote_write: two receivers named {entry.queue_name!r}; give each a "
                    "distinct name"
                )
            seen.add(entry.queue_name)
        self._data_dir = data_dir
        self._clock = clock
        self.queues = (
            [QueueManager(s, data_dir, clock, fsync=fsync, may_send=may_send) for s in settings]
            if data_dir
            else []
        )
        self._finished = asyncio.Event()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Run every queue until cancelled or :meth:`stop` (with none, only wait for it)."""
        try:
            if self._data_dir is not None:
                await in_thread(self._clock, self._forget_removed, self._data_dir)
            if not self.queues:
                await self._stopping.wait()
                return
            async with asyncio.TaskGroup() as group:
                for queue in self.queues:
                    group.create_task(queue.run(), name=f"remote-write-{queue.name}")
        finally:
            self._finished.set()

    async def stop(self) -> None:
        """Ask every queue to finish its batches in flight and to end; wait for that (on the
        clock) at most the longest ``remote_timeout_seconds``. Whoever runs :meth:`run`
        cancels it after, in case a receiver did not answer in time."""
        self._stopping.set()
        for queue in self.queues:
            queue.stop()
        if self.queues:
            longest = max(q.settings.remote_timeout_seconds for q in self.queues)
            await sleep_or_stop(self._clock, longest, self._finished)

    def _forget_removed(self, data_dir: Path) -> None:
        configured = {q.name for q in self.queues}
        for name in reader_names(data_dir):
            if name not in configured:
                log.info("remote write %s is no longer configured; forgetting its position", name)
                forget_reader(data_dir, name)

    def families(self) -> list[Family]:
        """Every queue's ``foresight_remote_storage_*`` samples, one family per name."""
        merged: dict[str, Family] = {}
        for queue in self.queues:
            for family in queue.families():
                into = merged.setdefault(family.name, Family(family.name, family.kind, family.help))
                into.samples.extend(family.samples)
        return list(merged.values())
