"""Immutable blocks: the samples of many series over one time range, sorted by series and time.

In memory a block costs 12 bytes per sample (a 32-bit offset from the block's start and a
64-bit value) plus 12 bytes per series, and once a large selection reads it, 4 bytes per id
of its range of ids (a table of where each id's rows are). On disk it is one file: a JSON
header line, then the columns compressed by :mod:`tsdb.codec`, guarded by a CRC32.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tsdb.arrays import position
from tsdb.codec import F64, I32, I64, CodecError, decode_columns, encode_columns

MAGIC = b"FSBLK1"
# Selections of this many ids (or any, once made) find them through the block's table of
# ids rather than a binary search each.
_TABLE_FROM = 2048
# Offsets are unsigned 32-bit milliseconds: a block may span up to 49 days.
MAX_SPAN_MS = 2**32 - 1


class BlockError(ValueError):
    """A block file that is damaged or not a block."""


@dataclass(frozen=True)
class Block:
    """Samples of many series in ``[mint, maxt]``, sorted by (series id, time)."""

    id: int
    resolution_ms: int
    mint: int
    maxt: int
    sids: I32
    starts: I64
    offsets: npt.NDArray[np.uint32]
    values: F64
    wal_upto: int = 0
    sources: tuple[int, ...] = field(default=())
    # Which block wins where two hold the same (series, time): the later write. Blocks made
    # from others keep the newest write order of their sources, not their new id.
    seq: int = 0

    @property
    def num_samples(self) -> int:
        return len(self.values)

    @property
    def nbytes(self) -> int:
        """Bytes of memory held by the arrays."""
        return self.sids.nbytes + self.starts.nbytes + self.offsets.nbytes + self.values.nbytes

    def timestamps(self, lo: int, hi: int) -> I64:
        """Absolute timestamps of rows ``lo:hi``."""
        return self.offsets[lo:hi].astype(np.int64) + self.mint

    def rows_of(self, sids: I32) -> tuple[I64, I64, I64]:
        """For each of the (sorted) ids present here: its position in ``sids``, first row
        and end row."""
        first = int(self.sids[0])
        span = int(self.sids[-1]) - first + 1
        idx: npt.NDArray[np.integer]
        if span == len(self.sids):
            # Every id of the block's range is here: an id's row is its offset.
            rel = sids.astype(np.int64) - first
            pos = np.flatnonzero((rel >= 0) & (rel < span))
            idx = rel[pos]
        elif len(sids) >= _TABLE_FROM or "_runs_of_ids" in self.__dict__:
            pos, idx = self._looked_up(sids, first, span)
        else:
            # Blocks are never empty, so clipping to the last position is always valid.
            at = np.minimum(np.searchsorted(self.sids, sids), len(self.sids) - 1)
            pos = np.flatnonzero(self.sids[at] == sids)
            idx = at[pos]
        return pos, self.starts[idx], self.starts[idx + 1]

    @functools.cached_property
    def _runs_of_ids(self) -> I32:
        """Per id of the block's range of ids (from its first), the index of its run in
        :attr:`sids`, -1 where absent: 4 bytes per id of the range, made once per block."""
        first = int(self.sids[0])
        table = np.full(int(self.sids[-1]) - first + 1, -1, dtype=np.int32)
        table[self.sids - first] = np.arange(len(self.sids), dtype=np.int32)
        return table

    def _looked_up(self, sids: I32, first: int, span: int) -> tuple[I64, npt.NDArray[np.integer]]:
        """Positions (in the ids asked) of the ids here and their index in :attr:`sids`,
        from :attr:`_runs_of_ids`: one gather, no search."""
        if not len(sids):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        # The ids asked are sorted: those within the block's range are one slice of them.
        a = position(sids, first) if int(sids[0]) < first else 0
        end = first + span
        b = position(sids, end) if int(sids[-1]) >= end else len(sids)
        idx = self._runs_of_ids[sids[a:b] - np.int32(first)]
        found = idx >= 0
        if found.all():
            return np.arange(a, b, dtype=np.int64), idx
        return np.flatnonzero(found) + a, idx[found]

    def rows_in(self, sids: I32, start_ms: int, end_ms: int) -> tuple[I64, I64, I64]:
        """:meth:`rows_of`, narrowed to the rows in ``[start_ms, end_ms]``."""
        pos, lo, hi = self.rows_of(sids)
        if start_ms > self.mint:
            lo = _search(self.offsets, lo, hi, start_ms - self.mint, right=False)
        if end_ms < self.maxt:
            hi = _search(self.offsets, lo, hi, end_ms - self.mint, right=True)
        return pos, lo, hi

    def newest(self) -> list[tuple[I32, I64, F64]]:
        """Each series' last two samples here, as (ids, absolute times, values) of those
        with two, then of every series' last."""
        last = self.starts[1:] - 1
        two = last > self.starts[:-1]
        before = last[two] - 1
        return [
            (
                self.sids[two],
                self.offsets[before].astype(np.int64) + self.mint,
                self.values[before],
            ),
            (self.sids, self.offsets[last].astype(np.int64) + self.mint, self.values[last]),
        ]

    def columns(self) -> tuple[I32, I64, F64]:
        """All samples as (id, absolute timestamp, value) columns."""
        counts = np.diff(self.starts)
        return np.repeat(self.sids, counts), self.offsets.astype(np.int64) + self.mint, self.values


def _search(offsets: npt.NDArray[np.uint32], lo: I64, hi: I64, target: int, right: bool) -> I64:
    """Per run ``offsets[lo[i]:hi[i]]`` (each sorted), the first index whose offset is
    above ``target`` (``right``) or at least ``target``: a binary search of every run
    at once, a few numpy steps however many runs."""
    lo, hi = lo.copy(), hi.copy()
    last = len(offsets) - 1
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = np.minimum((lo + hi) >> 1, last)
        probe = offsets[mid].astype(np.int64)
        after = (probe <= target) if right else (probe < target)
        lo = np.where(active & after, mid + 1, lo)
        hi = np.where(active & ~after, mid, hi)


def build_block(
    block_id: int,
    sids: I32,
    ts: I64,
    values: F64,
    resolution_ms: int = 0,
    wal_upto: int = 0,
    sources: Sequence[int] = (),
    seq: int | None = None,
) -> Block:
    """A block from unsorted samples; for duplicate (id, time) the last one given wins."""
    if not len(sids):
        raise ValueError("a block needs at least one sample")
    mint = int(ts.min())
    maxt = int(ts.max())
    if maxt - mint > MAX_SPAN_MS:
        raise ValueError(f"block would span {(maxt - mint) / 86_400_000:.1f} days, more than 49")
    rel = (ts - mint).astype(np.int64)
    key = (sids.astype(np.int64) << 32) | rel
    order = np.argsort(key, kind="stable")
    key = key[order]
    # Keep the last of each run of equal keys: the latest write of a (series, time) wins.
    keep = np.ones(len(key), dtype=bool)
    keep[:-1] = key[1:] != key[:-1]
    order = order[keep]
    sorted_sids = sids[order]
    boundaries = np.flatnonzero(np.diff(sorted_sids)) + 1
    starts = np.concatenate(([0], boundaries, [len(order)])).astype(np.int64)
    uniq = sorted_sids[starts[:-1]].astype(np.int32)
    return Block(
        id=block_id,
        resolution_ms=resolution_ms,
        mint=mint,
        maxt=maxt,
        sids=uniq,
        starts=starts,
        offsets=rel[order].astype(np.uint32),
        values=np.ascontiguousarray(values[order]),
        wal_upto=wal_upto,
        sources=tuple(sources),
        seq=block_id if seq is None else seq,
    )


def merge_blocks(block_id: int, blocks: Sequence[Block]) -> Block:
    """One block holding the samples of several (later writes win on duplicates)."""
    blocks = sorted(blocks, key=lambda b: (b.seq, b.id))
    parts = [b.columns() for b in blocks]
    return build_block(
        block_id,
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        resolution_ms=max(b.resolution_ms for b in blocks),
        wal_upto=max(b.wal_upto for b in blocks),
        sources=sorted({b.id for b in blocks} | {s for b in blocks for s in b.sources}),
        seq=blocks[-1].seq,
    )


def downsample(block_id: int, block: Block, step_ms: int) -> Block:
    """Keep the last sample of each series in each ``step_ms`` bucket.

    That is exactly what a slower scrape would have recorded, so counters still give correct
    rates and gauges correct values; only resolution is lost.
    """
    sids, ts, values = block.columns()
    bucket = ts // step_ms
    last = np.ones(len(ts), dtype=bool)
    last[:-1] = (sids[1:] != sids[:-1]) | (bucket[1:] != bucket[:-1])
    return build_block(
        block_id,
        sids[last],
        ts[last],
        values[last],
        resolution_ms=max(step_ms, block.resolution_ms),
        wal_upto=block.wal_upto,
        sources=sorted({block.id, *block.sources}),
        seq=block.seq,
    )


def encode_block(block: Block) -> bytes:
    """The file contents of a block."""
    sids, ts, values = block.columns()
    payload = encode_columns(sids, ts, values, level=3)
    header = {
        "id": block.id,
        "resolution_ms": block.resolution_ms,
        "mint": block.mint,
        "maxt": block.maxt,
        "samples": block.num_samples,
        "series": len(block.sids),
        "wal_upto": block.wal_upto,
        "sources": list(block.sources),
        "seq": block.seq,
        "crc32": zlib.crc32(payload),
    }
    return MAGIC + json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload


def decode_block(data: bytes) -> Block:
    """Parse and verify a block file; raises :class:`BlockError` on any damage."""
    if not data.startswith(MAGIC):
        raise BlockError("not a block file (bad magic)")
    newline = data.find(b"\n", len(MAGIC))
    if newline < 0:
        raise BlockError("truncated header")
    try:
        header = json.loads(data[len(MAGIC) : newline])
        payload = data[newline + 1 :]
        if zlib.crc32(payload) != header["crc32"]:
            raise BlockError("checksum mismatch")
        sids, ts, values = decode_columns(payload)
    except (ValueError, KeyError, TypeError, CodecError) as e:
        if isinstance(e, BlockError):
            raise
        raise BlockError(f"damaged block: {e}") from e
    if len(values) != header["samples"]:
        raise BlockError(f"block has {len(values)} samples, header says {header['samples']}")
    return build_block(
        header["id"],
        sids,
        ts,
        values,
        header["resolution_ms"],
        header["wal_upto"],
        header["sources"],
        header.get("seq"),
    )
