"""The embedded time-series store.

Samples land in the :class:`~tsdb.head.Head` and, at every flush, in the
write-ahead log. When the head holds a block's worth of time or samples it is sealed into an
immutable :class:`~tsdb.block.Block`, written to its own file, and the log
segments it covers are deleted. Old blocks are downsampled (raw → 1 minute → 5 minutes) and
finally dropped; blocks of one window are merged into one.

Files in the data directory::

    series.log      every series ever created: id and labels (checksummed records)
    wal/N.seg       samples not yet sealed into a block (checksummed records)
    blocks/N.blk    sealed blocks (checksummed)
    lock            held while a process has the store open; names its pid and host

A crash loses at most the samples appended since the last flush; on open, damaged tails of
log files are cut off and damaged blocks are set aside (``N.blk.corrupt``), each with a logged
warning, and the store starts with everything that is intact.

A full disk (ENOSPC, EDQUOT) or a failing one (EIO) stops no caller: a failed log write is
cut back out of its file, and what it held stays in memory (a head being sealed stays whole
and readable, no block of it published) and is written by a later flush. Each operation's
failures are counted (:attr:`StoreStats.write_failures`) and logged once per episode; the
background writer retries with backoff and goes on by itself once space is back.

Concurrency. One writer thread (the event loop's collectors and recorders) appends while
readers (a rule round, a model fit, the query API) and the store's own background work
(:meth:`Store.run_flusher`: log writes, sealing, :meth:`Store.maintain`) run in other
threads. The contract:

* **Appends never wait for slow work.** ``_lock`` is held only for the index and a few array
  copies: creating a series, copying a batch into the head, swapping a full head for an
  empty one, taking a read snapshot, publishing a new list of blocks. Nothing that encodes,
  sorts a block or touches the disk runs under it.
* **Reads see a consistent snapshot**: under ``_lock`` a reader takes the list of blocks (a
  list that is replaced, never changed in place; blocks are immutable), the heads being
  sealed, and a frozen view of the head bounded by its row count then (an instant read
  also gathers its series' two newest samples, :mod:`tsdb.latest`); it gathers rows
  without the lock, and takes the lock again only to turn series ids into labels. Samples
  appended after the snapshot are not seen; a sample is never seen twice nor half. If
  maintenance forgot series in between (:attr:`Store.generation` moved), the read is retried.
* **One background writer**: log writes, sealing and maintenance hold ``_io_lock`` for as
  long as they take, one at a time; appends and reads never take it. A full head is swapped
  out at once and stays readable in ``_sealing`` until its blocks are published; the log
  segments it covers are deleted only after its blocks are on disk.
* Without a running flusher (tests, benchmarks, the backtest), appends flush, seal and
  maintain inline, as before; :meth:`Store.run_flusher` moves that work off the loop.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import math
import os
import socket
import struct
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from runtime.backoff import Backoff
from runtime.clock import Clock, in_thread
from tsdb.block import (
    Block,
    BlockError,
    build_block,
    decode_block,
    downsample,
    encode_block,
    merge_blocks,
)
from tsdb.codec import (
    F64,
    I32,
    I64,
    CodecError,
    decode_columns,
    encode_columns,
)
from tsdb.gather import (
    Gathered,
    block_part,
    disjoint,
    head_part,
    merge_runs,
    newest_known,
    newest_rows,
    overlapping,
)
from tsdb.head import Head
from tsdb.index import SeriesIndex
from tsdb.labels import (
    InvalidLabels,
    Labels,
    Matcher,
    format_labels,
    make_labels,
    validate_labels,
)
from tsdb.latest import LatestSamples
from tsdb.recordlog import (
    RecordWriter,
    frame,
    iter_files,
    recover_file,
    write_atomically,
)
from tsdb.settings import StoreSettings
from tsdb.strings import StringTable
from tsdb.wal_readers import drop_covered_segments

log = logging.getLogger(__name__)

# Prometheus' staleness marker: a NaN with this exact bit pattern ends a series.
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
_STALE_BITS = np.uint64(0x7FF0000000000002)

_SERIES_RECORD = 1
_SAMPLES_RECORD = 2
_SID = struct.Struct("<I")
_MINUTE_MS = 60_000
_FIVE_MINUTES_MS = 300_000
_DAY_MS = 86_400_000
MAINTAIN_EVERY_SECONDS = 60.0
"""How often the flusher (or, without one, appends) maintain the blocks."""
_TIER_FANOUT = 4
# Reads retried when maintenance forgot series between their snapshot and their labels; the
# last attempt holds the lock throughout.
_READ_ATTEMPTS = 3
# Pause before the background writer tries the disk again after a failed write (a full disk).
_DISK_RETRY = Backoff(initial_s=1.0, max_s=30.0)
_T = TypeVar("_T")


def is_stale(value: float) -> bool:
    """Whether a value is the staleness marker (not just any NaN)."""
    return math.isnan(value) and struct.pack("<d", value) == struct.pack("<d", STALE_NAN)


def stale_mask(values: F64) -> npt.NDArray[np.bool_]:
    """Which values are staleness markers."""
    mask: npt.NDArray[np.bool_] = values.view(np.uint64) == _STALE_BITS
    return mask


class StoreError(Exception):
    """Base of the errors the store raises."""


class StoreLocked(StoreError):
    """Another process has the data directory open."""


class SeriesLimitExceeded(StoreError):
    """Creating a series would exceed ``max_series``."""


class UnknownSeries(StoreError):
    """A series reference that does not exist (never created, or deleted by retention)."""


class Series(NamedTuple):
    """One series' samples in a time range: timestamps in ms, values as floats."""

    labels: Labels
    timestamps: I64
    values: F64

    def __str__(self) -> str:
        return f"{format_labels(self.labels)} ({len(self.values)} samples)"


class SeriesColumns(NamedTuple):
    """Many series' samples laid end to end, with no gaps: series ``i`` is
    ``timestamps[starts[i]:ends[i]]``, sorted by time, and ``ends[i] == starts[i + 1]``.
    Callers that work on all series at once skip one array per series."""

    labels: list[Labels]
    timestamps: I64
    values: F64
    starts: I64
    ends: I64

    def split(self) -> list[Series]:
        """One :class:`Series` per series."""
        ts, vals = self.timestamps, self.values
        return [
            Series(lb, ts[a:b], vals[a:b])
            for lb, a, b in zip(self.labels, self.starts.tolist(), self.ends.tolist(), strict=True)
        ]


class CodedColumns(NamedTuple):
    """:class:`SeriesColumns` with label sets as codes: ``codes[i, j]`` is the code (in
    :attr:`Store.strings`) of series ``i``'s value of label ``names[j]``, 0 where it has
    none. Callers that group or match series by labels do it on these integers."""

    names: list[str]
    codes: npt.NDArray[np.int32]
    timestamps: I64
    values: F64
    starts: I64
    ends: I64


_NO_COLUMNS = SeriesColumns(
    [], np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
)


@dataclass
class StoreStats:
    """Counters and sizes, exported as metrics by the collectors."""

    series: int = 0
    head_samples: int = 0
    block_samples: int = 0
    blocks: int = 0
    memory_bytes: int = 0
    disk_bytes: int = 0
    samples_appended: int = 0
    samples_rejected: dict[str, int] = field(default_factory=dict)
    recovered_damage: int = 0
    write_failures: dict[str, int] = field(default_factory=dict)
    write_failing: bool = False


@dataclass
class _Sealing:
    """A full head swapped out of the way of appends, readable until its blocks are
    published: ``flushed`` of its rows are in the log; ``wal_upto`` is the log segment that
    holds its last rows, once they are written."""

    head: Head
    flushed: int
    wal_upto: int | None = None


@dataclass(frozen=True)
class _Snapshot:
    """What one read sees (see the module's concurrency contract)."""

    sids: I32
    blocks: list[Block]
    heads: list[Head]
    generation: int
    # Each series' newest and previous samples, for a read of newest samples only.
    latest: tuple[I64, F64, I64, F64] | None = None


class Store:
    """Series by labels, samples by time; persistent unless ``persistent=False``."""

    def __init__(self, settings: StoreSettings, clock: Clock, persistent: bool = True) -> None:
        self.settings = settings
        self._clock = clock
        self._persistent = persistent
        # See the module docstring: _lock is short, _io_lock serialises the slow writers.
        self._lock = threading.RLock()
        self._io_lock = threading.RLock()
        self._background = False
        self._sealing: list[_Sealing] = []
        self._index = SeriesIndex()
        self._alive = np.zeros(1024, dtype=bool)
        self._head = Head()
        self._blocks: list[Block] = []
        self._latest = LatestSamples()
        self._next_block_id = 1
        self._segment = 0
        self._flushed_rows = 0
        # Created series not yet in the series log; encoded by the log's writer, not by the
        # append that created them.
        self._pending_series: list[tuple[int, Labels]] = []
        # Ids at or above this were created since the last garbage collection of series
        # (ids only grow): a set of them would rehash millions of ids, holding the
        # interpreter lock, whenever it grew.
        self._recent_from = 0
        self._last_flush = clock.now()
        self._last_maintain = clock.now()
        self._samples_appended = 0
        self._rejected: dict[str, int] = {}
        self._recovered_damage = 0
        # Failed disk writes by operation, the operations failing now (an episode: logged
        # once when it starts and once when it ends), and when the background writer may try
        # again.
        self._write_failures: dict[str, int] = {}
        self._failing: dict[str, int] = {}
        self._retry_attempt = 0
        self._retry_at = 0.0
        self.generation = 0
        # Called with the oldest timestamp of each append once it is readable, so that
        # caches of answers learn of samples written into their past (a history back-fill).
        self.append_observers: list[Callable[[int], None]] = []
        self._lock_file: IO[bytes] | None = None
        self._series_writer: RecordWriter | None = None
        self._wal_writer: RecordWriter | None = None
        if persistent:
            self._open_dir()

    # ----------------------------------------------------------------------------- series

    def ref(self, labels: Mapping[str, str] | Labels) -> int:
        """The id of a series, created on first use. Ids stay valid until retention drops
        the series (see :attr:`generation`)."""
        key = labels if isinstance(labels, tuple) else make_labels(labels)
        with self._lock:
            sid = self._index.get(key)
            if sid is not None:
                return sid
            return self._create(key)

    def refs(self, label_sets: Sequence[Labels], distinct: bool = False) -> I32:
        """The ids of many series (canonical label sets, as :func:`make_labels` gives),
        those not known yet created together: a rule's first evaluation creates tens of
        thousands, which one by one would cost more than the evaluation. ``distinct``: the
        caller knows no label set is given twice (a rule's output, checked), and they are
        not checked again."""
        return self._refs(label_sets, None, distinct)

    def refs_coded(
        self,
        label_sets: Sequence[Labels],
        names: Sequence[str],
        codes: npt.NDArray[np.int32],
        strings: StringTable,
        distinct: bool = False,
    ) -> I32:
        """:meth:`refs`, given the label sets also as codes of ``strings``: ``codes[i, j]``
        is the code of ``label_sets[i]``'s value of label ``names[j]`` (names sorted; 0
        where it has none; negative for a value ``strings`` did not know). Codes of
        :attr:`strings` (a rule's output over this store has them) spare the index looking
        up every value of the series it creates."""
        if strings is not self.strings:
            return self._refs(label_sets, None, distinct)
        return self._refs(label_sets, (names, codes), distinct)

    def _refs(
        self,
        label_sets: Sequence[Labels],
        coded: tuple[Sequence[str], npt.NDArray[np.int32]] | None,
        distinct: bool,
    ) -> I32:
        with self._lock:
            found: list[int | None]
            if coded is not None and self._index.holds_none_of(label_sets, *coded):
                # A rule's first output of its metric: no lookups (one hash of each label
                # set saved, of three, where it creates tens of thousands; ``distinct``
                # saves another).
                found = [None] * len(label_sets)
                missing = list(range(len(label_sets)))
            else:
                found = list(map(self._index.get, label_sets))
                missing = [i for i, sid in enumerate(found) if sid is None]
            if not missing:
                return np.array(found, dtype=np.int32)
            new = [label_sets[i] for i in missing]
            once = new if distinct else list(dict.fromkeys(new))
            if len(self._index) + len(once) > self.settings.max_series:
                # Created one by one up to the limit, which then raises.
                made = [self._create(labels) for labels in once]
            else:
                if coded is not None:
                    rows = _first_rows(missing, new, len(once))
                    coded = (coded[0], coded[1][rows])
                made = self._created(self._index.add_many(once, validate_labels, coded))
            if len(once) < len(new):
                ids = dict(zip(once, made, strict=True))
                made = [ids[labels] for labels in new]
            for i, sid in zip(missing, made, strict=True):
                found[i] = sid
            return np.array(found, dtype=np.int32)

    def _created(self, sids: I32) -> list[int]:
        """What :meth:`_create` notes of a new series, for many (under ``_lock``)."""
        made: list[int] = sids.tolist()
        self._grow_alive(int(sids[-1]) if len(sids) else -1)
        self._alive[sids] = True
        if self._persistent:
            self._pending_series.extend((sid, self._index.labels(sid)) for sid in made)
        return made

    def _grow_alive(self, top: int) -> None:
        """Grow :attr:`_alive` (doubling) to hold ids up to ``top``."""
        if top >= len(self._alive):
            grown = np.zeros(max(2 * len(self._alive), top + 1), dtype=bool)
            grown[: len(self._alive)] = self._alive
            self._alive = grown

    def _create(self, labels: Labels) -> int:
        validate_labels(labels)
        if len(self._index) >= self.settings.max_series:
            self._count_rejected("series_limit", 1)
            raise SeriesLimitExceeded(
                f"cannot create {format_labels(labels)}: the store holds max_series="
                f"{self.settings.max_series} series"
            )
        sid = self._index.add(labels)
        self._grow_alive(sid)
        self._alive[sid] = True
        if self._persistent:
            self._pending_series.append((sid, labels))
        return sid

    def labels(self, ref: int) -> Labels:
        """The labels of a series id; takes no lock, so a ``/metrics`` renderer in a forked
        child may call it (a lock held by a parent's thread at the fork stays held there)."""
        # One dict read, atomic under the interpreter lock: an id forgotten meanwhile is
        # unknown, never half-read.
        try:
            return self._index.labels(ref)
        except KeyError:
            raise UnknownSeries(f"unknown series id {ref}") from None

    # ----------------------------------------------------------------------------- append

    def append(self, series: int | Mapping[str, str] | Labels, ts_ms: int, value: float) -> None:
        """Append one sample."""
        with self._lock:
            sid = series if isinstance(series, int) else self.ref(series)
            if not (0 <= sid < len(self._alive) and self._alive[sid]):
                raise UnknownSeries(f"unknown series id {sid}")
            if not self._head.fits(ts_ms, ts_ms):
                self._swap_head()
            self._head.append_one(sid, ts_ms, value)
            self._latest.note_one(sid, ts_ms, value)
            self._samples_appended += 1
            self._check_full()
        for observe in self.append_observers:
            observe(ts_ms)
        self._after_append()

    def append_batch(self, refs: I32, ts_ms: I64 | int, values: F64) -> None:
        """Append many samples at once: ``refs[i]`` gets ``values[i]`` at ``ts_ms[i]`` (or at
        one shared timestamp). This is the fast path: cost is a few array copies."""
        refs = np.asarray(refs, dtype=np.int32)
        values = np.asarray(values, dtype=np.float64)
        n = len(refs)
        ts = (
            np.full(n, ts_ms, dtype=np.int64)
            if isinstance(ts_ms, (int, np.integer))
            else np.asarray(ts_ms, dtype=np.int64)
        )
        if not (len(ts) == len(values) == n):
            raise ValueError(f"batch columns differ in length: {n}, {len(ts)}, {len(values)}")
        if n == 0:
            return
        with self._lock:
            if refs.min() < 0 or refs.max() >= len(self._alive) or not self._alive[refs].all():
                bad = refs[(refs < 0) | (refs >= len(self._alive))]
                if not len(bad):
                    bad = refs[~self._alive[refs]]
                raise UnknownSeries(f"unknown series id {int(bad[0])} in batch")
            lo, hi = int(ts.min()), int(ts.max())
            if not self._head.fits(lo, hi):
                self._swap_head()
            fits = self._head.fits(lo, hi)
            if fits:
                self._head.append(refs, ts, values)
                self._latest.note(refs, ts, values)
                self._samples_appended += n
                self._check_full()
        if not fits:
            # One batch spanning more than 24 days: split it in time (outside the lock, as
            # each half may seal: the background writer's lock is never taken under ours).
            order = np.argsort(ts, kind="stable")
            first, second = order[: n // 2], order[n // 2 :]
            self.append_batch(refs[first], ts[first], values[first])
            self.append_batch(refs[second], ts[second], values[second])
            return
        for observe in self.append_observers:
            observe(lo)
        self._after_append()

    def mark_stale(self, series: int | Mapping[str, str] | Labels, ts_ms: int) -> None:
        """Record that a series ended (its target vanished) at ``ts_ms``."""
        self.append(series, ts_ms, STALE_NAN)

    def _check_full(self) -> None:
        head = self._head
        if (
            head.count >= self.settings.head_max_samples
            or head.maxt - head.mint >= self.settings.block_duration_minutes * _MINUTE_MS
        ):
            self._swap_head()

    def _swap_head(self) -> None:
        """Put the head aside for sealing and start an empty one (under ``_lock``)."""
        if not self._head.count:
            return
        self._sealing.append(_Sealing(self._head, self._flushed_rows))
        self._head = Head()
        self._flushed_rows = 0

    def _after_append(self) -> None:
        """The slow work an append would set off, unless the flusher does it elsewhere."""
        if self._background:
            return
        now = self._clock.now()
        if now < self._retry_at:
            return
        if self._sealing:
            self._seal_pending()
        if now - self._last_flush >= self.settings.flush_interval_seconds:
            self.flush()
        if now - self._last_maintain >= MAINTAIN_EVERY_SECONDS:
            self.maintain()

    def _count_rejected(self, reason: str, n: int) -> None:
        self._rejected[reason] = self._rejected.get(reason, 0) + n

    # ----------------------------------------------------------------------------- select

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        """Every series matching all matchers, with its samples in ``[start_ms, end_ms]``.

        Series without samples in the range are left out.
        """
        return self.select_columns(matchers, start_ms, end_ms).split()

    def select_columns(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> SeriesColumns:
        """What :meth:`select` returns, as columns."""

        def finish(rows: Gathered) -> SeriesColumns:
            s, t, v, starts, ends = rows
            labels_of = self._index.labels
            return SeriesColumns([labels_of(sid) for sid in s.tolist()], t, v, starts, ends)

        columns = self._read(matchers, start_ms, end_ms, False, finish)
        return _NO_COLUMNS if columns is None else columns

    def select_coded(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, newest: bool = False
    ) -> CodedColumns:
        """What :meth:`select_columns` returns, with label sets as codes of
        :attr:`strings` rather than tuples; with ``newest``, only each series' newest
        sample in the range (all an instant selector reads)."""

        def finish(rows: Gathered) -> CodedColumns:
            s, t, v, starts, ends = rows
            names, codes = self._index.label_codes(s)
            return CodedColumns(names, codes, t, v, starts, ends)

        columns = self._read(matchers, start_ms, end_ms, newest, finish)
        if columns is None:
            return CodedColumns([], np.zeros((0, 0), np.int32), *_NO_COLUMNS[1:])
        return columns

    @property
    def strings(self) -> StringTable:
        """The codes of label names and values that :meth:`select_coded` uses."""
        return self._index.strings

    def _read(
        self,
        matchers: Sequence[Matcher],
        start_ms: int,
        end_ms: int,
        newest: bool,
        finish: Callable[[Gathered], _T],
    ) -> _T | None:
        """Gather rows from a snapshot without the lock, then ``finish`` them (ids to labels)
        under it; if maintenance forgot series meanwhile, read again, at last all locked."""
        for attempt in range(_READ_ATTEMPTS):
            last = attempt == _READ_ATTEMPTS - 1
            with self._lock if last else contextlib.nullcontext():
                snap = self._snapshot(matchers, newest)
                rows = None if snap is None else self._select_rows(snap, start_ms, end_ms, newest)
                if snap is None or rows is None:
                    return None
                with self._lock:
                    if self.generation == snap.generation:
                        return finish(rows)
        raise AssertionError("the last attempt reads under the lock")

    def _snapshot(self, matchers: Sequence[Matcher], newest: bool = False) -> _Snapshot | None:
        """The ids that match and the sources to read them from, as of now; with
        ``newest``, also their newest samples."""
        with self._lock:
            sids = self._index.select(matchers)
            if not len(sids):
                return None
            heads = [e.head.frozen() for e in self._sealing]
            if self._head.count:
                heads.append(self._head.frozen())
            latest = self._latest.get(sids) if newest else None
            return _Snapshot(sids, self._blocks, heads, self.generation, latest)

    def _select_rows(
        self, snap: _Snapshot, start_ms: int, end_ms: int, newest: bool = False
    ) -> Gathered | None:
        """The rows of a snapshot's series in the range; needs no lock."""
        sids = snap.sids
        blocks = [b for b in snap.blocks if b.maxt >= start_ms and b.mint <= end_ms]
        # Heads in write order, oldest first: those being sealed, then the live one.
        heads = [h for h in snap.heads if h.count and h.maxt >= start_ms and h.mint <= end_ms]
        if newest:
            # Blocks in write order (the order kept), then heads: of equal times, the later.
            sources: list[Block | Head] = [*blocks, *heads]
            if snap.latest is not None:
                return newest_known(sources, sids, start_ms, end_ms, snap.latest)
            return newest_rows(sources, sids, start_ms, end_ms)
        spans = sorted([(b.mint, b.maxt) for b in blocks])
        spans.extend((h.mint, h.maxt) for h in heads)
        if not disjoint(spans):
            parts = [block_part(b, sids, start_ms, end_ms) for b in blocks]
            parts.extend(head_part(h, sids, start_ms, end_ms) for h in heads)
            return overlapping(parts, sids)
        blocks.sort(key=lambda b: b.mint)
        parts = [block_part(b, sids, start_ms, end_ms) for b in blocks]
        parts.extend(head_part(h, sids, start_ms, end_ms) for h in heads)
        return merge_runs(parts, sids)

    def series(self, matchers: Sequence[Matcher]) -> list[Labels]:
        """Label sets of the series matching all matchers (whether or not they have data)."""
        with self._lock:
            return [self._index.labels(int(sid)) for sid in self._index.select(matchers)]

    def label_names(self) -> list[str]:
        """Every label name in use."""
        with self._lock:
            return self._index.label_names()

    def label_values(self, name: str) -> list[str]:
        """Every value of a label."""
        with self._lock:
            return self._index.label_values(name)

    # ----------------------------------------------------------------------------- lifecycle

    def flush(self) -> None:
        """Write what was appended since the last flush to the log.

        A failed write (a full disk) raises nothing: it is counted and logged, the samples
        stay in memory and the next flush writes them."""
        with self._io_lock:
            self._guarded("flush", self._write_log)

    def _write_log(self) -> None:
        """New series, the unlogged rows of heads set aside (each closing its segment), then
        the head's new rows. Holds ``_io_lock``; ``_lock`` only to take the rows. Each part
        is marked written only once its write succeeded, so a failed one is written again."""
        with self._lock:
            self._last_flush = self._clock.now()
            series = list(self._pending_series)
            entries = [e for e in self._sealing if e.wal_upto is None]
            head, hi = self._head, self._head.count
            lo = self._flushed_rows
        if not self._persistent:
            for entry in entries:
                entry.wal_upto = 0
            with self._lock:
                self._mark_flushed(head, hi)
            return
        assert self._series_writer is not None and self._wal_writer is not None
        if series:
            self._series_writer.write(
                b"".join(frame(_SERIES_RECORD, _encode_series(sid, lb)) for sid, lb in series)
            )
            with self._lock:
                # Only the io-lock holder takes from the front; appends add at the end.
                del self._pending_series[: len(series)]
        for entry in entries:
            count = entry.head.count
            if count > entry.flushed:
                cols = entry.head.columns(entry.flushed)
                self._write_wal(frame(_SAMPLES_RECORD, encode_columns(*cols, level=1)))
                entry.flushed = count
            # The head's rows must not reach this segment: sealing the entry deletes it.
            upto = self._segment
            self._open_segment()
            entry.wal_upto = upto
        if hi > lo:
            cols = head.columns(lo, hi)
            self._write_wal(frame(_SAMPLES_RECORD, encode_columns(*cols, level=1)))
            with self._lock:
                self._mark_flushed(head, hi)

    def _write_wal(self, data: bytes) -> None:
        assert self._wal_writer is not None
        try:
            self._wal_writer.write(data)
        except OSError:
            if self._wal_writer.torn:
                # The failed write could not be cut back out of the segment: later records
                # go to a new one, never behind the tear (which the next open cuts off).
                with contextlib.suppress(OSError):
                    self._open_segment()
            raise

    def _mark_flushed(self, head: Head, rows: int) -> None:
        """Record that ``rows`` of ``head`` are in the log (under ``_lock``); the head may
        have been set aside for sealing while they were written."""
        if head is self._head:
            self._flushed_rows = max(self._flushed_rows, rows)
            return
        for entry in self._sealing:
            if entry.head is head:
                entry.flushed = max(entry.flushed, rows)

    def _guarded(self, operation: str, work: Callable[[], None]) -> bool:
        """Run disk work (holding ``_io_lock``); an OSError (ENOSPC, EDQUOT, EIO, ...) is
        counted, logged once per episode and left for a retry, so that a full disk never
        stops the service. Whether the work succeeded."""
        try:
            work()
        except OSError as e:
            self._disk_failed(operation, e)
            return False
        with self._lock:
            failed = self._failing.pop(operation, None)
            if not self._failing:
                self._retry_attempt, self._retry_at = 0, 0.0
        if failed is not None:
            log.warning("store %s: writing works again after %d failed attempts", operation, failed)
        return True

    def _disk_failed(self, operation: str, e: OSError) -> None:
        with self._lock:
            self._write_failures[operation] = self._write_failures.get(operation, 0) + 1
            first = operation not in self._failing
            self._failing[operation] = self._failing.get(operation, 0) + 1
            self._retry_attempt += 1
            self._retry_at = self._clock.now() + _DISK_RETRY.delay(self._retry_attempt)
        if first:
            code = errno.errorcode.get(e.errno or 0, str(e.errno))
            log.error(
                "store %s failed: %s: %s (%s); keeping the samples in memory and retrying "
                "until it works (logged again only then)",
                operation,
                e.filename or self.settings.data_dir,
                e.strerror or e,
                code,
            )

    async def run_flusher(self) -> None:
        """Flush every ``flush_interval_seconds``, seal full heads and maintain every minute,
        in a thread off the event loop, until cancelled. Meanwhile appends do none of it."""
        self._background = True
        try:
            while True:
                await self._clock.sleep(self.settings.flush_interval_seconds)
                await in_thread(self._clock, self._background_step)
        finally:
            self._background = False

    def _background_step(self) -> None:
        if self._clock.now() < self._retry_at:
            return
        self._seal_pending()
        self.flush()
        if self._clock.now() - self._last_maintain >= MAINTAIN_EVERY_SECONDS:
            self.maintain()

    def _cut(self) -> None:
        """Seal the head into a block now."""
        with self._lock:
            self._swap_head()
        self._seal_pending()

    def _seal_pending(self) -> None:
        """Turn the heads set aside into blocks, oldest first; each one's log segments go
        once its blocks are on disk. On a failed write the head stays in memory, readable,
        and no block of it is published."""
        with self._io_lock:
            self._guarded("seal", self._seal_all)

    def _seal_all(self) -> None:
        while True:
            with self._lock:
                if not self._sealing:
                    return
                entry = self._sealing[0]
            if entry.wal_upto is None:
                self._write_log()
            assert entry.wal_upto is not None
            blocks = self._build_blocks(*entry.head.columns(), wal_upto=entry.wal_upto)
            self._write_blocks(blocks)
            with self._lock:
                self._publish(blocks, ())
                self._sealing.pop(0)
            if self._persistent:
                self._drop_segments(entry.wal_upto)

    def _write_blocks(self, blocks: list[Block]) -> None:
        """All the blocks on disk, or (raising) none: a block left behind would be loaded
        next to the log replay of the same rows."""
        written: list[Block] = []
        try:
            for block in blocks:
                self._write_block(block)
                written.append(block)
        except OSError:
            for block in written:
                with contextlib.suppress(OSError):
                    self._block_path(block.id).unlink(missing_ok=True)
            raise

    def _build_blocks(self, sids: I32, ts: I64, values: F64, wal_upto: int) -> list[Block]:
        """Samples as one block per block-duration window they fall in."""
        width = self.settings.block_duration_minutes * _MINUTE_MS
        window = ts // width
        if window.min() == window.max():
            return [build_block(self._take_block_id(), sids, ts, values, wal_upto=wal_upto)]
        blocks = []
        for w in np.unique(window).tolist():
            rows = window == w
            blocks.append(
                build_block(
                    self._take_block_id(), sids[rows], ts[rows], values[rows], wal_upto=wal_upto
                )
            )
        return blocks

    def maintain(self) -> None:
        """Downsample, merge and drop old blocks, and forget series that have no data left.

        Runs under ``_io_lock`` only: each new block is built and written without blocking
        appends or reads, then published under ``_lock`` in one swap. A failed write (a
        full disk) leaves the blocks as they were and is retried next time."""
        with self._io_lock:
            self._seal_pending()
            self._guarded("maintain", self._maintain)

    def _maintain(self) -> None:
        with self._lock:
            self._last_maintain = now_s = self._clock.now()
        now = int(now_s * 1000)
        s = self.settings
        raw_limit = now - int(s.raw_retention_hours * 3_600_000)
        minute_limit = now - int(s.minute_retention_days * _DAY_MS)
        five_limit = now - int(s.five_minute_retention_days * _DAY_MS)
        changed = False
        for block in list(self._blocks):
            if block.maxt < five_limit:
                self._replace([block], None)
            elif block.maxt < minute_limit and block.resolution_ms < _FIVE_MINUTES_MS:
                self._replace([block], downsample(self._take_block_id(), block, _FIVE_MINUTES_MS))
            elif block.maxt < raw_limit and block.resolution_ms < _MINUTE_MS:
                self._replace([block], downsample(self._take_block_id(), block, _MINUTE_MS))
            else:
                continue
            changed = True
        changed |= self._compact(now, raw_limit, minute_limit)
        changed |= self._merge_tiers()
        if changed:
            self._collect_garbage()

    def _merge_tiers(self) -> bool:
        """Merge raw blocks of a window that is still filling, four of a size at a time.

        The head is sealed every ``head_max_samples``, so a busy store makes many small
        blocks per window, and every read visits each of them. Merging equal-sized
        neighbours keeps a window at a few blocks per size class (logarithmically many)
        while each sample is rewritten only a logarithmic number of times.
        """
        width = self.settings.block_duration_minutes * _MINUTE_MS
        merged = False
        again = True
        while again:
            again = False
            for window in sorted({b.mint // width for b in self._blocks if not b.resolution_ms}):
                lo, hi = window * width, (window + 1) * width - 1
                # Blocks are in write order: only a run of raw blocks that nothing else
                # overlapping the window interrupts may be merged without reordering writes.
                overlapping = [b for b in self._blocks if b.maxt >= lo and b.mint <= hi]
                group = _consecutive_of_one_tier(overlapping)
                if group:
                    self._replace(group, merge_blocks(self._take_block_id(), group))
                    merged = again = True
        return merged

    def _compact(self, now: int, raw_limit: int, minute_limit: int) -> bool:
        """Merge the blocks of each closed window: raw by block duration, then by day and week."""
        block_ms = self.settings.block_duration_minutes * _MINUTE_MS
        # A raw window is closed once the heads and the clock have moved past it.
        with self._lock:
            heads = [e.head for e in self._sealing] + [self._head]
            head_start = min([h.mint for h in heads if h.count], default=now)
        head_start = min(head_start, now)
        windows = {0: block_ms, _MINUTE_MS: _DAY_MS, _FIVE_MINUTES_MS: 7 * _DAY_MS}
        groups: dict[tuple[int, int], list[Block]] = {}
        for block in self._blocks:
            width = windows.get(block.resolution_ms, 7 * _DAY_MS)
            groups.setdefault((block.resolution_ms, block.mint // width), []).append(block)
        merged = False
        for (resolution, window), blocks in groups.items():
            if len(blocks) < 2:
                continue
            width = windows.get(resolution, 7 * _DAY_MS)
            closed_before = {0: head_start, _MINUTE_MS: raw_limit, _FIVE_MINUTES_MS: minute_limit}
            limit = closed_before.get(resolution, minute_limit)
            window_end = (window + 1) * width + block_ms
            if window_end > limit or _interleaved(blocks, self._blocks):
                continue
            self._replace(blocks, merge_blocks(self._take_block_id(), blocks))
            merged = True
        return merged

    def _collect_garbage(self) -> None:
        """Forget series that no block and no head hold any more (holds ``_io_lock``)."""
        with self._lock:
            blocks = self._blocks
            heads = [(h, h.count) for h in [e.head for e in self._sealing] + [self._head]]
        live = np.zeros(len(self._alive), dtype=bool)
        for block in blocks:
            live[block.sids] = True
        for head, count in heads:
            if count:
                live[head.columns(0, count)[0]] = True
        with self._lock:
            # Rows appended since the snapshot (few) keep their series too.
            seen = {id(h): n for h, n in heads}
            for head in [e.head for e in self._sealing] + [self._head]:
                rest = head.columns(seen.get(id(head), 0))[0]
                if len(rest):
                    live[rest[rest < len(live)]] = True
            dead = np.flatnonzero(self._alive[: len(live)] & ~live)
            # Series created since the last maintenance may be about to receive their first
            # sample.
            dead = dead[dead < self._recent_from].astype(np.int32)
            self._recent_from = self._index.next_id
            if not len(dead):
                return
            self._index.remove(dead.tolist())
            self._alive[dead] = False
            self.generation += 1
            items = list(self._index.items()) if self._persistent else []
            # Every series created so far is in ``items``; those created later stay pending.
            # They are taken off once the new log is written: if that fails, the old log
            # (which lists the forgotten series too, harmlessly) gets them appended.
            written = len(self._pending_series)
        if self._persistent:
            self._rewrite_series_log(items)
        with self._lock:
            del self._pending_series[:written]
        log.info("forgot %d series with no data left", len(dead))

    def _replace(self, old: list[Block], new: Block | None) -> None:
        """Swap blocks in memory and on disk; a crash in between leaves a state that opens."""
        if new is not None:
            self._write_block(new)
        with self._lock:
            self._publish([new] if new is not None else [], {b.id for b in old})
            if new is None or new.resolution_ms > min(b.resolution_ms for b in old):
                # Deleted samples may have been some series' newest or previous (downsampling
                # keeps each series' newest): reads look in the blocks. Merges drop nothing
                # and keep which write wins (see _interleaved).
                for block in old:
                    self._latest.forget(block.sids, block.maxt, newest=new is None)
        if self._persistent:
            for b in old:
                self._block_path(b.id).unlink(missing_ok=True)

    def _write_block(self, block: Block) -> None:
        if self._persistent:
            write_atomically(self._block_path(block.id), encode_block(block), self.settings.fsync)

    def _publish(self, added: list[Block], gone: Collection[int]) -> None:
        """A new list of blocks for readers to take (under ``_lock``); never changed in place."""
        kept = [b for b in self._blocks if b.id not in gone]
        self._blocks = sorted([*kept, *added], key=lambda b: (b.seq, b.id))

    def _add_block(self, block: Block) -> None:
        self._write_block(block)
        with self._lock:
            self._publish([block], ())

    def _take_block_id(self) -> int:
        bid = self._next_block_id
        self._next_block_id += 1
        return bid

    def stats(self) -> StoreStats:
        """Sizes and counters."""
        disk = 0
        if self._persistent:
            # Files come and go while maintenance runs; one that went counts for nothing.
            for p in self.settings.data_dir.rglob("*"):
                with contextlib.suppress(OSError):
                    disk += p.stat().st_size if p.is_file() else 0
        with self._lock:
            heads = [e.head for e in self._sealing] + [self._head]
            return StoreStats(
                series=len(self._index),
                head_samples=sum(h.count for h in heads),
                block_samples=sum(b.num_samples for b in self._blocks),
                blocks=len(self._blocks),
                memory_bytes=sum(h.nbytes for h in heads)
                + sum(b.nbytes for b in self._blocks)
                + self._latest.nbytes,
                disk_bytes=disk,
                samples_appended=self._samples_appended,
                samples_rejected=dict(self._rejected),
                recovered_damage=self._recovered_damage,
                write_failures=dict(self._write_failures),
                write_failing=bool(self._failing),
            )

    def close(self) -> None:
        """Flush and release the data directory."""
        with self._io_lock, self._lock:
            if self._persistent and self._wal_writer is not None:
                self.flush()
                lost = (
                    self._head.count
                    - self._flushed_rows
                    + sum(e.head.count - e.flushed for e in self._sealing if e.wal_upto is None)
                )
                if lost:
                    log.error(
                        "%s: closing with %d samples that could not be written to the log; "
                        "they are lost",
                        self.settings.data_dir,
                        lost,
                    )
                self._wal_writer.close()
                assert self._series_writer is not None
                self._series_writer.close()
                self._wal_writer = self._series_writer = None
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------- disk

    @property
    def _wal_dir(self) -> Path:
        return self.settings.data_dir / "wal"

    @property
    def _block_dir(self) -> Path:
        return self.settings.data_dir / "blocks"

    @property
    def _series_path(self) -> Path:
        return self.settings.data_dir / "series.log"

    def _block_path(self, block_id: int) -> Path:
        return self._block_dir / f"{block_id:08d}.blk"

    def _open_dir(self) -> None:
        data_dir = self.settings.data_dir
        for d in (data_dir, self._wal_dir, self._block_dir):
            d.mkdir(parents=True, exist_ok=True)
        lock_path = data_dir / "lock"
        # Not truncated before the lock is ours: it names the holder for the next one to try.
        self._lock_file = os.fdopen(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644), "r+b")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._lock_file.read(200).decode("utf-8", "replace").strip()
            self._lock_file.close()
            self._lock_file = None
            raise StoreLocked(
                f"{data_dir}: another foresight process has this store open "
                f"({holder or 'holder unknown'}, locking {lock_path}); stop it or give this "
                "one another store.data_dir"
            ) from None
        self._lock_file.truncate(0)
        # Only a note for the next one to try, so a full disk does not keep the store shut.
        with contextlib.suppress(OSError):
            note = f"pid {os.getpid()} on {socket.gethostname()}".encode()
            os.write(self._lock_file.fileno(), note)
        for tmp in data_dir.rglob("*.tmp"):
            tmp.unlink()
        self._load_blocks()
        self._load_series()
        self._replay_wal()
        self._series_writer = RecordWriter(self._series_path, self.settings.fsync)
        self._segment += 1
        self._wal_writer = RecordWriter(
            self._wal_dir / f"{self._segment:08d}.seg", self.settings.fsync
        )
        # What was replayed is in the log already; seal it now if it is a block's worth.
        self._flushed_rows = self._head.count
        if self._head.count >= self.settings.head_max_samples:
            self._cut()

    def _load_blocks(self) -> None:
        loaded: list[Block] = []
        for number, path in iter_files(self._block_dir, ".blk"):
            self._next_block_id = max(self._next_block_id, number + 1)
            try:
                block = decode_block(path.read_bytes())
            except (BlockError, OSError) as e:
                self._recovered_damage += 1
                log.warning("%s: %s; setting it aside as %s.corrupt", path, e, path.name)
                path.rename(path.with_name(path.name + ".corrupt"))
                continue
            loaded.append(block)
        # A crash between writing a merged block and deleting its sources leaves both.
        replaced = {s for b in loaded for s in b.sources}
        for block in loaded:
            if block.id in replaced:
                self._block_path(block.id).unlink(missing_ok=True)
        self._blocks = sorted(
            (b for b in loaded if b.id not in replaced), key=lambda b: (b.seq, b.id)
        )
        for block in self._blocks:
            for taken in block.newest():
                self._latest.note(*taken)
        self._segment = max((b.wal_upto for b in self._blocks), default=0)

    def _load_series(self) -> None:
        if not self._series_path.exists():
            return
        for record in recover_file(self._series_path):
            if record.kind != _SERIES_RECORD:
                continue
            try:
                sid, labels = _decode_series(record.payload)
                self._index.add(labels, sid)
            except (ValueError, InvalidLabels) as e:
                self._recovered_damage += 1
                log.warning("%s: skipping a bad series record: %s", self._series_path, e)
        size = max(self._index.next_id, 1)
        self._alive = np.zeros(max(1024, 2 * size), dtype=bool)
        self._alive[self._index.all_ids()] = True

    def _replay_wal(self) -> None:
        covered = self._segment
        unknown = 0
        # Covered segments a reader of the log (remote write) has not sent yet stay.
        drop_covered_segments(self.settings.data_dir, covered)
        for number, path in iter_files(self._wal_dir, ".seg"):
            if number <= covered:
                continue
            self._segment = max(self._segment, number)
            for record in recover_file(path):
                if record.kind != _SAMPLES_RECORD:
                    continue
                try:
                    sids, ts, values = decode_columns(record.payload)
                except CodecError as e:
                    self._recovered_damage += 1
                    log.warning("%s: skipping an undecodable record: %s", path, e)
                    continue
                known = sids < len(self._alive)
                known[known] = self._alive[sids[known]]
                if not known.all():
                    unknown += int((~known).sum())
                    sids, ts, values = sids[known], ts[known], values[known]
                self._append_recovered(sids, ts, values, number)
        if unknown:
            self._count_rejected("unknown_series_in_log", unknown)
            log.warning(
                "dropped %d logged samples of series missing from %s", unknown, self._series_path
            )

    def _append_recovered(self, sids: I32, ts: I64, values: F64, segment: int) -> None:
        if not len(sids):
            return
        if not self._head.fits(int(ts.min()), int(ts.max())):
            # Only a log spanning weeks gets here. Earlier segments are covered by the block;
            # this one may be replayed twice after another crash, which reads dedupe.
            for block in self._build_blocks(*self._head.columns(), wal_upto=segment - 1):
                self._add_block(block)
            self._head = Head()
        self._head.append(sids, ts, values)
        self._latest.note(sids, ts, values)

    def _open_segment(self) -> None:
        """Continue the log in a new segment (holds ``_io_lock``)."""
        assert self._wal_writer is not None
        # Opened before the old one is closed: if that fails, the log goes on where it was.
        writer = RecordWriter(self._wal_dir / f"{self._segment + 1:08d}.seg", self.settings.fsync)
        self._wal_writer.close()
        self._wal_writer = writer
        self._segment += 1

    def _drop_segments(self, upto: int) -> None:
        """Delete the log segments that sealed blocks cover, but those a reader of the log
        still needs (:mod:`tsdb.wal_readers`)."""
        drop_covered_segments(self.settings.data_dir, upto)

    def _rewrite_series_log(self, items: list[tuple[int, Labels]]) -> None:
        """Replace the series log with ``items`` (holds ``_io_lock``, the only writer)."""
        assert self._series_writer is not None
        data = b"".join(frame(_SERIES_RECORD, _encode_series(sid, lb)) for sid, lb in items)
        # If this fails the old log and its writer stay as they were.
        write_atomically(self._series_path, data, self.settings.fsync)
        writer = RecordWriter(self._series_path, self.settings.fsync)
        self._series_writer.close()
        self._series_writer = writer


def _first_rows(rows: list[int], label_sets: list[Labels], distinct: int) -> list[int]:
    """Of ``rows`` (whose label sets are ``label_sets``), the first row of each distinct
    label set, in order of first appearance (``distinct`` of them)."""
    if distinct == len(rows):
        return rows
    first: dict[Labels, int] = {}
    for row, labels in zip(rows, label_sets, strict=True):
        first.setdefault(labels, row)
    return list(first.values())


def _interleaved(group: list[Block], blocks: list[Block]) -> bool:
    """Whether a block outside ``group`` was written between its blocks and overlaps them
    in time: merged into one (which takes the group's latest write order), the group's
    older writes would win over that block's at equal times."""
    first, last = min(b.seq for b in group), max(b.seq for b in group)
    mint, maxt = min(b.mint for b in group), max(b.maxt for b in group)
    return any(
        first < b.seq < last and b.maxt >= mint and b.mint <= maxt
        for b in blocks
        if all(b is not g for g in group)
    )


def _consecutive_of_one_tier(blocks: list[Block]) -> list[Block]:
    """The first ``_TIER_FANOUT`` neighbours (in write order) that are raw and of one size
    class, or nothing. Only neighbours may merge: a block written between them that
    overlaps their window would otherwise lose to writes older than its own."""
    for i in range(len(blocks) - _TIER_FANOUT + 1):
        group = blocks[i : i + _TIER_FANOUT]
        if not any(b.resolution_ms for b in group) and len({_tier(b) for b in group}) == 1:
            return group
    return []


def _tier(block: Block) -> int:
    """Size class of a block: blocks of one class differ in size by less than 4x."""
    return int(math.log(max(block.num_samples, 1), _TIER_FANOUT))


def _encode_series(sid: int, labels: Labels) -> bytes:
    return _SID.pack(sid) + json.dumps(labels, separators=(",", ":")).encode()


def _decode_series(payload: bytes) -> tuple[int, Labels]:
    (sid,) = _SID.unpack_from(payload)
    pairs = json.loads(payload[_SID.size :])
    labels = tuple((str(k), str(v)) for k, v in pairs)
    validate_labels(labels)
    return sid, labels


def open_store(settings: StoreSettings, clock: Clock) -> Store:
    """Open (recovering if needed) the persistent store in ``settings.data_dir``."""
    return Store(settings, clock, persistent=True)


__all__ = [
    "STALE_NAN",
    "CodedColumns",
    "Series",
    "SeriesLimitExceeded",
    "Store",
    "StoreError",
    "StoreLocked",
    "StoreStats",
    "UnknownSeries",
    "is_stale",
    "open_store",
    "stale_mask",
]
