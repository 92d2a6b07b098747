"""Shards: the queues between the log and the senders, and what each has delivered.

Every sample read from the write-ahead log has a position ``(segment, offset, index)``: the
segment, the byte offset of its record there, and its index in the record. Positions order
the log. A series always goes to the same shard (``series id % shards``), and a shard sends
its samples in log order, one batch at a time, so a series' samples reach the receiver in
order.

Each shard keeps two positions, saved durably around every send:

* ``acked`` — every sample of this shard before it has been delivered (or dropped for good);
* ``inflight`` — the end of the batch being sent, if any.

After a crash the log is read again from the smallest ``acked``; a sample before its shard's
``acked`` is skipped, and a shard's first batch is exactly its samples up to ``inflight``: the
batch that was in flight is sent again unchanged (a receiver that had stored it sees the
same batch twice, never a mix), so duplicates stay within one batch. Pure logic, no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from tsdb.arrays import position
from tsdb.codec import F64, I32, I64
from tsdb.wal_tail import WalRecord

__all__ = ["Batch", "Chunk", "Position", "Shard", "split_record"]

Position = tuple[int, int, int]
START: Position = (0, 0, 0)


@dataclass
class Chunk:
    """Some of one record's samples, all of one shard."""

    segment: int
    offset: int
    index: I32
    sids: I32
    ts: I64
    values: F64
    queued_at: float

    def __len__(self) -> int:
        return len(self.sids)

    def end(self, rows: int) -> Position:
        """The position just after row ``rows - 1``."""
        return (self.segment, self.offset, int(self.index[rows - 1]) + 1)


@dataclass(frozen=True)
class Batch:
    """Samples to send in one request; ``end`` is the shard's ``acked`` once delivered."""

    sids: I32
    ts: I64
    values: F64
    end: Position
    # The batch that was in flight when the process stopped, sent again.
    replay: bool = False

    def __len__(self) -> int:
        return len(self.sids)


@dataclass
class Shard:
    """One queue of samples, sent in order by one sender."""

    acked: Position = START
    inflight: Position | None = None
    # Set on resume: the first batch ends exactly here (the batch in flight at the crash).
    cut_at: Position | None = None
    chunks: deque[Chunk] = field(default_factory=deque)
    pending: int = 0

    @property
    def oldest_queued_at(self) -> float | None:
        return self.chunks[0].queued_at if self.chunks else None

    def push(self, chunk: Chunk) -> None:
        if len(chunk):
            self.chunks.append(chunk)
            self.pending += len(chunk)

    def take(self, max_samples: int) -> Batch | None:
        """The oldest ``max_samples`` samples at most, as a batch; None when empty."""
        return self._take(max_samples, None)

    def take_until(self, end: Position) -> Batch | None:
        """Every queued sample before ``end``, as a batch; None when there is none."""
        return self._take(None, end)

    def _take(self, max_samples: int | None, until: Position | None) -> Batch | None:
        parts: list[tuple[I32, I64, F64]] = []
        taken = 0
        last: Position | None = None
        while self.chunks:
            chunk = self.chunks[0]
            rows = len(chunk)
            if max_samples is not None:
                rows = min(rows, max_samples - taken)
            if until is not None:
                rows = _rows_before(chunk, until)
            if rows <= 0:
                break
            parts.append((chunk.sids[:rows], chunk.ts[:rows], chunk.values[:rows]))
            last = chunk.end(rows)
            taken += rows
            if rows == len(chunk):
                self.chunks.popleft()
            else:
                self.chunks[0] = Chunk(
                    chunk.segment,
                    chunk.offset,
                    chunk.index[rows:],
                    chunk.sids[rows:],
                    chunk.ts[rows:],
                    chunk.values[rows:],
                    chunk.queued_at,
                )
                break
        if last is None:
            return None
        self.pending -= taken
        return Batch(
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            last,
        )


def _rows_before(chunk: Chunk, end: Position) -> int:
    """How many of the chunk's rows lie before ``end``."""
    where = (chunk.segment, chunk.offset)
    if where < end[:2]:
        return len(chunk)
    if where > end[:2]:
        return 0
    return position(chunk.index, end[2])


def split_record(record: WalRecord, shards: list[Shard], now: float) -> list[tuple[int, Chunk]]:
    """The record's samples by shard (``series id % len(shards)``), leaving out those before
    their shard's ``acked`` (delivered before a restart)."""
    n = len(shards)
    owner = record.sids % n if n > 1 else np.zeros(len(record.sids), np.int32)
    index = np.arange(len(record.sids), dtype=np.int32)
    where = (record.segment, record.offset)
    out = []
    for k in range(n):
        rows = np.flatnonzero(owner == k) if n > 1 else index
        acked = shards[k].acked
        if acked[:2] > where:
            continue
        if acked[:2] == where:
            rows = rows[index[rows] >= acked[2]]
        if not len(rows):
            continue
        out.append(
            (
                k,
                Chunk(
                    record.segment,
                    record.offset,
                    index[rows],
                    record.sids[rows],
                    record.ts[rows],
                    record.values[rows],
                    now,
                ),
            )
        )
    return out
