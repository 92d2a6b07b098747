"""One remote-write queue: the store's write-ahead log, read from a saved position, sent in
sharded batches to one receiver.

Tasks on the event loop, slow work in threads (:func:`runtime.clock.in_thread`):

* the **reader** follows the log (:class:`tsdb.wal_tail.WalTail`, reading and decoding in a
  thread), turns ids into labels from ``series.log``, and queues each record's samples on
  their shards (:func:`remotewrite.shards.split_record`); it pauses while the shards hold
  ``capacity`` samples each, leaving the rest in the log: nothing is dropped for lack of room,
  and the store's appends never wait for any of this;
* one **sender** per shard cuts a batch when ``max_samples_per_send`` samples are queued or
  the oldest has waited ``batch_send_deadline_seconds``, encodes it in a thread, sends it
  (:class:`remotewrite.client.RemoteClient`), and retries on 5xx, 429 and connection errors
  with backoff, honouring ``Retry-After``, until it goes through; a 4xx drops the batch and
  counts it failed;
* every ``_RESHARD_SECONDS`` the shard count is sized again (:mod:`remotewrite.sizing`): the
  reader pauses, the shards drain, and they start again in the new number.

Positions (see :mod:`remotewrite.shards`) are saved with :func:`tsdb.wal_readers.
save_reader_state` before each batch goes out and after it is acknowledged; that state also
tells the store which log segments to keep (up to ``max_wal_held_bytes``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from remotewrite.client import Rejected, RemoteClient, Retryable, safe_url
from remotewrite.prompb import encode_request, series_header
from remotewrite.settings import RemoteWriteSettings
from remotewrite.shards import Batch, Position, Shard, split_record
from remotewrite.sizing import desired_shards
from runtime import names
from runtime.backoff import Backoff
from runtime.clock import Clock, in_thread, sleep_or_stop
from runtime.families import Family
from tsdb.labels import Labels
from tsdb.wal_readers import load_reader_state, save_reader_state
from tsdb.wal_tail import SeriesNames, WalRecord, WalTail, segments

log = logging.getLogger(__name__)

__all__ = ["QueueManager", "QueueStats"]

_POLL_SECONDS = 1.0
_RESHARD_SECONDS = 10.0
# Samples the reader takes from the log in one step (then queues them and looks again).
_READ_SAMPLES = 50_000


@dataclass
class QueueStats:
    """Counters and gauges of one queue, exported as ``foresight_remote_storage_*``."""

    samples_sent: int = 0
    samples_failed: int = 0
    samples_retried: int = 0
    samples_passed_over: int = 0
    bytes_sent: int = 0
    highest_read_ms: int = 0
    highest_sent_ms: int = 0
    segments_skipped: int = 0
    desired_shards: int = 0


class _Encoder:
    """Request bodies of batches; keeps each series' serialised labels (a few dozen bytes)
    so that a series sent in every batch has its labels built once."""

    _KEEP = 1_000_000

    def __init__(self, names_: SeriesNames) -> None:
        self._names = names_
        self._headers: dict[int, bytes] = {}

    def encode(self, batch: Batch) -> tuple[bytes, int]:
        """The body of a batch (series in id order, samples in time order), and how many
        samples had no labels (series unknown to ``series.log``) and were left out."""
        order = np.lexsort((batch.ts, batch.sids))
        sids = batch.sids[order]
        # Lists, sliced per series: far cheaper than an array view per series.
        ts, values = batch.ts[order].tolist(), batch.values[order].tolist()
        cuts = np.flatnonzero(np.diff(sids)) + 1
        starts = [0, *cuts.tolist()]
        ends = [*cuts.tolist(), len(sids)]
        first = sids[starts].tolist() if len(sids) else []
        series: list[tuple[Labels | bytes, list[int], list[float]]] = []
        unknown = 0
        headers = self._headers
        if len(headers) > self._KEEP:
            headers.clear()  # series come and go; the live ones are built again once
        for sid, a, b in zip(first, starts, ends, strict=True):
            header = headers.get(sid)
            if header is None:
                labels = self._names.get(sid)
                if labels is None:
                    unknown += b - a
                    continue
                header = headers[sid] = series_header(labels)
            series.append((header, ts[a:b], values[a:b]))
        return encode_request(series), unknown


class QueueManager:
    """Sends the log of the store in ``data_dir`` to one receiver."""

    def __init__(
        self,
        settings: RemoteWriteSettings,
        data_dir: Path,
        clock: Clock,
        client: RemoteClient | None = None,
        fsync: bool = False,
        may_send: Callable[[], bool] = lambda: True,
    ) -> None:
        """``may_send()`` False: batches are passed over, not sent (a standby replica, whose
        copy of the leader's series would collide with it at the receiver)."""
        self.settings = settings
        self._may_send = may_send
        self.name = settings.queue_name
        self._data_dir = data_dir
        self._clock = clock
        # Made when the queue runs: a queue only asked for its metrics holds no connection.
        self._client = client
        self._fsync = fsync
        q = settings.queue_config
        # A server's Retry-After is waited in full, as Prometheus does, even past the maximum.
        self._backoff = Backoff(
            q.min_backoff_seconds, q.max_backoff_seconds, jitter=0.1, cap_retry_after=False
        )
        self.stats = QueueStats(desired_shards=q.min_shards)
        self._names = SeriesNames(data_dir)
        self._encoder = _Encoder(self._names)
        self._tail: WalTail | None = None
        self.shards: list[Shard] = []
        self._wake: list[asyncio.Event] = []
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        self._reader_pos: Position = (0, 0, 0)
        self._draining = False
        # Saves: requested and written generations, so concurrent requests share a write.
        self._save_lock = asyncio.Lock()
        self._requested = 0
        self._saved = 0
        self._written: tuple[int, dict[str, Any]] | None = None
        # Per-shard sending throughput, for sizing: samples acknowledged, seconds spent.
        self._sent_samples = 0
        self._send_seconds = 0.0
        self._read_samples = 0
        self._caught_up = False

    # -- state ---------------------------------------------------------------------------

    def _load(self) -> None:
        """Where to start: the saved shards, or the start of the newest segment."""
        state = load_reader_state(self._data_dir, self.name)
        shards = state.get("shards") if state else None
        if isinstance(shards, list) and shards:
            try:
                self.shards = [
                    Shard(
                        acked=_position(s["acked"]),
                        inflight=None,
                        cut_at=_position(s["inflight"]) if s.get("inflight") else None,
                    )
                    for s in shards
                ]
            except (KeyError, TypeError, ValueError) as e:
                log.warning("remote write %s: saved state unreadable (%s)", self.name, e)
                self.shards = []
        if not self.shards:
            on_disk = segments(self._data_dir)
            start: Position = (on_disk[-1] if on_disk else 0, 0, 0)
            self.shards = [Shard(acked=start) for _ in range(self.settings.queue_config.min_shards)]
            log.info(
                "remote write %s: no saved position, starting at segment %d", self.name, start[0]
            )
        else:
            log.info(
                "remote write %s: resuming %d shards from segment %d",
                self.name,
                len(self.shards),
                min(s.acked for s in self.shards)[0],
            )
        lowest = min(s.acked for s in self.shards)
        self._tail = WalTail(self._data_dir, lowest[0], lowest[1])
        self._reader_pos = (lowest[0], lowest[1], 0)
        self._save_now()

    def _state(self) -> tuple[int, dict[str, Any]]:
        lowest = min(s.acked for s in self.shards)
        shards = []
        for s in self.shards:
            # A batch to send again (after a restart) is still in flight for the next one.
            inflight = s.inflight or s.cut_at
            shards.append(
                {"acked": list(s.acked), "inflight": list(inflight) if inflight else None}
            )
        return lowest[0], {"shards": shards}

    def _save_now(self) -> None:
        segment, extra = self._state()
        save_reader_state(
            self._data_dir,
            self.name,
            segment,
            self.settings.queue_config.max_wal_held_bytes,
            extra,
            self._fsync,
        )
        self._written = (segment, extra)

    async def _persist(self) -> None:
        """Save the positions as they are now (or later), before returning."""
        self._requested += 1
        wanted = self._requested
        async with self._save_lock:
            if self._saved >= wanted:
                return
            generation = self._requested
            segment, extra = self._state()
            if (segment, extra) == self._written:
                self._saved = generation
                return
            await in_thread(
                self._clock,
                save_reader_state,
                self._data_dir,
                self.name,
                segment,
                self.settings.queue_config.max_wal_held_bytes,
                extra,
                self._fsync,
            )
            self._saved = generation
            self._written = (segment, extra)

    # -- running -------------------------------------------------------------------------

    def stop(self) -> None:
        """Let :meth:`run` finish the batches in flight (delivered and acknowledged, so a
        planned restart sends nothing twice), start no more, and return."""
        self._stopping.set()
        self._room.set()
        for event in self._wake:
            event.set()

    async def run(self) -> None:
        """Read, queue and send until cancelled or :meth:`stop`; the position is saved as it
        goes. A reader or sender that fails ends it with that error."""
        await in_thread(self._clock, self._load)
        own_client = self._client is None
        if self._client is None:
            self._client = RemoteClient(self.settings, self._clock)
        try:
            while (n := await self._round()) is not None:
                self._reshard(n)
                await self._persist()
        finally:
            if own_client:
                await self._client.aclose()
                self._client = None

    async def _round(self) -> int | None:
        """Run the reader and the shards until the shard count should change; then stop
        reading, drain the shards, and return the new count. On :meth:`stop`, stop reading,
        let each shard finish its batch in flight, and return None."""
        self._wake = [asyncio.Event() for _ in self.shards]
        senders = [
            asyncio.create_task(self._send_loop(k), name=f"remote-write-{self.name}-{k}")
            for k in range(len(self.shards))
        ]
        stop_reading = asyncio.Event()
        reader = asyncio.create_task(
            self._read_loop(stop_reading), name=f"remote-write-{self.name}"
        )
        sizing = asyncio.create_task(self._size_loop(), name=f"remote-write-{self.name}-size")
        stopping = asyncio.create_task(self._stopping.wait())
        tasks = [reader, sizing, stopping, *senders]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            n: int | None = None
            if self._stopping.is_set():
                sizing.cancel()
                await asyncio.gather(sizing, return_exceptions=True)
            elif sizing in done:
                n = sizing.result()
            else:
                for task in done:
                    task.result()
                raise RuntimeError(f"remote write {self.name}: a task ended unexpectedly")
            stopping.cancel()
            await asyncio.gather(stopping, return_exceptions=True)
            stop_reading.set()
            self._room.set()
            await reader
            self._draining = True
            for event in self._wake:
                event.set()
            for result in await asyncio.gather(*senders, return_exceptions=True):
                if isinstance(result, BaseException):
                    raise result
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            self._draining = False
        return n

    def _reshard(self, n: int) -> None:
        """Start ``n`` empty shards at the reader's position (the old ones are drained)."""
        log.info("remote write %s: %d shards -> %d", self.name, len(self.shards), n)
        self.shards = [Shard(acked=self._reader_pos) for _ in range(n)]

    async def _size_loop(self) -> int:
        """Sleep and size the queue again until the shard count should change; returns the
        new count."""
        q = self.settings.queue_config
        last_read, last_at = self._read_samples, self._clock.now()
        while True:
            await self._clock.sleep(_RESHARD_SECONDS)
            now = self._clock.now()
            in_rate = (self._read_samples - last_read) / max(now - last_at, 1e-9)
            last_read, last_at = self._read_samples, now
            per_shard = self._sent_samples / self._send_seconds if self._send_seconds > 0 else None
            want = desired_shards(
                len(self.shards), q.min_shards, q.max_shards, self.pending, in_rate, per_shard
            )
            self.stats.desired_shards = want
            if want != len(self.shards):
                return want

    def idle(self) -> bool:
        """Whether everything in the log up to the last look at it has been sent."""
        return self._caught_up and all(
            not s.pending and s.inflight is None and s.cut_at is None for s in self.shards
        )

    @property
    def pending(self) -> int:
        return sum(s.pending for s in self.shards)

    async def _read_loop(self, stop: asyncio.Event) -> None:
        """Follow the log and queue its samples on the shards, until ``stop`` (looked at
        between steps: a step cancelled while its thread reads would lose what it read)."""
        assert self._tail is not None
        capacity = self.settings.queue_config.capacity * len(self.shards)
        while not stop.is_set():
            # A batch to send again after a restart is cut only once the reader is past its
            # end, so reading goes on until it is, whatever is queued.
            replaying = any(s.cut_at is not None for s in self.shards)
            if self.pending >= capacity and not replaying:
                self._room.clear()
                await sleep_or_stop(self._clock, _POLL_SECONDS, self._room)
                continue
            records = await in_thread(self._clock, self._read_step)
            self._caught_up = not records
            now = self._clock.now()
            self.stats.segments_skipped = self._tail.skipped_segments
            for record in records:
                for k, chunk in split_record(record, self.shards, now):
                    self.shards[k].push(chunk)
                    self._wake[k].set()
                self._read_samples += len(record.sids)
                if len(record.ts):
                    self.stats.highest_read_ms = max(
                        self.stats.highest_read_ms, int(record.ts.max())
                    )
            self._reader_pos = (self._tail.segment, self._tail.offset, 0)
            for k, shard in enumerate(self.shards):
                if shard.cut_at is not None:
                    self._wake[k].set()
                elif not shard.pending and shard.inflight is None:
                    # Nothing of this shard before the reader is undelivered.
                    shard.acked = max(shard.acked, self._reader_pos)
            if not records:
                await self._persist()
                await sleep_or_stop(self._clock, _POLL_SECONDS, stop)

    def _read_step(self) -> list[WalRecord]:
        """The next records of the log, their series' labels read (in a thread)."""
        assert self._tail is not None
        records = self._tail.read(_READ_SAMPLES)
        for record in records:
            unknown = self._names.resolve(record.sids)
            if unknown:
                log.warning(
                    "remote write %s: %d series ids in the log are not in series.log; their "
                    "samples are not sent",
                    self.name,
                    len(unknown),
                )
        return records

    async def _next_batch(self, k: int) -> Batch | None:
        """Wait for shard ``k``'s next batch; None when draining and it is empty."""
        shard = self.shards[k]
        q = self.settings.queue_config
        while True:
            if self._stopping.is_set():
                return None
            if shard.cut_at is not None:
                if self._reader_pos >= shard.cut_at or self._draining:
                    end, shard.cut_at = shard.cut_at, None
                    batch = shard.take_until(end)
                    if batch is not None:
                        return dataclasses.replace(batch, replay=True)
                    continue
            elif shard.pending >= q.max_samples_per_send or (shard.pending and self._draining):
                return shard.take(q.max_samples_per_send)
            elif shard.pending:
                waited = self._clock.now() - (shard.oldest_queued_at or 0.0)
                if waited >= q.batch_send_deadline_seconds:
                    return shard.take(q.max_samples_per_send)
            if self._draining:
                return None
            if shard.pending and shard.cut_at is None:
                timeout = q.batch_send_deadline_seconds - (
                    self._clock.now() - (shard.oldest_queued_at or 0.0)
                )
            else:
                timeout = _POLL_SECONDS * 10
            self._wake[k].clear()
            await sleep_or_stop(self._clock, max(timeout, 0.0), self._wake[k])

    async def _send_loop(self, k: int) -> None:
        shard = self.shards[k]
        while True:
            batch = await self._next_batch(k)
            if batch is None:
                return
            self._room.set()
            if not self._may_send():
                self.stats.samples_passed_over += len(batch)
                shard.acked = batch.end
                await self._persist()
                continue
            shard.inflight = batch.end
            await self._persist()
            body, unknown = await in_thread(self._clock, self._encoder.encode, batch)
            self.stats.samples_failed += unknown
            sent = len(batch) - unknown
            delivered = await self._deliver(body, sent, batch.replay)
            if delivered:
                self._sent_samples += sent
                self.stats.samples_sent += sent
                self.stats.bytes_sent += len(body)
                if len(batch.ts):
                    self.stats.highest_sent_ms = max(
                        self.stats.highest_sent_ms, int(batch.ts.max())
                    )
            shard.acked, shard.inflight = batch.end, None
            await self._persist()

    async def _deliver(self, body: bytes, samples: int, replay: bool = False) -> bool:
        """Send until it goes through (True) or is rejected for good (False)."""
        if not samples:
            return True
        attempt = 0
        while True:
            try:
                assert self._client is not None
                started = self._clock.now()
                await self._client.send(body)
                # Only attempts that went through measure what a shard can deliver: pauses
                # of an outage would make more shards look needed.
                self._send_seconds += self._clock.now() - started
                if attempt:
                    log.info(
                        "remote write %s: batch delivered after %d retries", self.name, attempt
                    )
                return True
            except Rejected as e:
                self.stats.samples_failed += samples
                if replay:
                    # Prometheus answers 400 (out of order) to samples it already has.
                    log.warning(
                        "%s; dropping %d samples of the batch in flight at the last stop, "
                        "which the receiver most likely stored then",
                        e,
                        samples,
                    )
                else:
                    log.error("%s; dropping %d samples", e, samples)
                return False
            except Retryable as e:
                attempt += 1
                self.stats.samples_retried += samples
                pause = self._backoff.delay(attempt, e.retry_after, random.random)
                log.warning("%s; retry %d of %d samples in %.2f s", e, attempt, samples, pause)
                await self._clock.sleep(pause)

    # -- metrics -------------------------------------------------------------------------

    def families(self) -> list[Family]:
        """This queue's ``foresight_remote_storage_*`` samples."""
        # Without user info: a URL with credentials in it must not show them on /metrics.
        labels = {"remote_name": self.name, "url": safe_url(self.settings.url)}
        s, q = self.stats, self.settings.queue_config
        values: list[tuple[str, Any, str, float]] = [
            (names.REMOTE_SAMPLES, "counter", "Samples sent to the receiver.", s.samples_sent),
            (
                names.REMOTE_SAMPLES_FAILED,
                "counter",
                "Samples the receiver refused for good (4xx but 429) or that had no labels.",
                s.samples_failed,
            ),
            (
                names.REMOTE_SAMPLES_RETRIED,
                "counter",
                "Samples sent again after a 5xx, 429 or connection failure.",
                s.samples_retried,
            ),
            (
                names.REMOTE_SAMPLES_STANDBY,
                "counter",
                "Samples passed over while a standby: the leader sends the same series.",
                s.samples_passed_over,
            ),
            (
                names.REMOTE_SAMPLES_PENDING,
                "gauge",
                "Samples read from the log and queued, not yet sent.",
                self.pending,
            ),
            (names.REMOTE_BYTES, "counter", "Compressed request bytes sent.", s.bytes_sent),
            (
                names.REMOTE_HIGHEST_TIMESTAMP,
                "gauge",
                "Highest sample timestamp read from the log, in unix seconds.",
                s.highest_read_ms / 1000,
            ),
            (
                names.REMOTE_HIGHEST_SENT_TIMESTAMP,
                "gauge",
                "Highest sample timestamp delivered, in unix seconds.",
                s.highest_sent_ms / 1000,
            ),
            (names.REMOTE_SHARDS, "gauge", "Shards sending now.", len(self.shards)),
            (names.REMOTE_SHARDS_MIN, "gauge", "Fewest shards allowed.", q.min_shards),
            (names.REMOTE_SHARDS_MAX, "gauge", "Most shards allowed.", q.max_shards),
            (
                names.REMOTE_SHARDS_DESIRED,
                "gauge",
                "Shards the queue wants from its last sizing.",
                s.desired_shards,
            ),
            (
                names.REMOTE_WAL_SEGMENT,
                "gauge",
                "Log segment the reader is in.",
                self._tail.segment if self._tail is not None else 0,
            ),
            (
                names.REMOTE_WAL_SEGMENTS_SKIPPED,
                "counter",
                "Log segments deleted before they were sent (the queue was past "
                "max_wal_held_bytes).",
                s.segments_skipped,
            ),
        ]
        out = []
        for name, kind, help_text, value in values:
            family = Family(name, kind, help_text)
            family.add(value, **labels)
            out.append(family)
        return out


def _position(value: object) -> Position:
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(f"not a position: {value!r}")
    a, b, c = (int(v) for v in value)
    return (a, b, c)
