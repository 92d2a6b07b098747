"""Following the store's write-ahead log from a position, as the store appends to it.

:class:`WalTail` reads the sample records of ``wal/N.seg`` from ``(segment, offset)`` on and
hands back whole records only: a record the store is still writing (its tail not yet in the
file) is read again later. A segment is done once a later one exists (the store never writes
to a segment again after opening the next); a damaged tail of a done segment is skipped with
a warning, and a segment deleted before it was read (a reader past its bound, see
:mod:`tsdb.wal_readers`) is skipped and counted.

:class:`SeriesNames` reads ``series.log`` the same way, so a reader turns series ids into
labels from the disk, as a separate process would. The store rewrites that file when it
forgets series; names already read are kept, so a sample still in the log keeps its labels.

Both are used from one thread at a time; nothing here blocks the store, which appends by
``O_APPEND`` writes of whole records.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from runtime.gcpause import StaysTracked
from tsdb.codec import F64, I32, I64, CodecError, decode_columns
from tsdb.labels import InvalidLabels, Labels
from tsdb.recordlog import read_records
from tsdb.store import _SAMPLES_RECORD, _SERIES_RECORD, _decode_series
from tsdb.wal_readers import SEGMENT_SUFFIX, segment_path, wal_dir

log = logging.getLogger(__name__)

__all__ = ["SeriesNames", "WalRecord", "WalTail", "segments"]

_HEADER_BYTES = 9
_READ_BYTES = 4 << 20


@dataclass(frozen=True)
class WalRecord:
    """One sample record: where it starts in the log, and its columns."""

    segment: int
    offset: int
    sids: I32
    ts: I64
    values: F64


def segments(data_dir: Path) -> list[int]:
    """The numbers of the log segments on disk, in order."""
    found = []
    for p in wal_dir(data_dir).glob(f"*{SEGMENT_SUFFIX}"):
        stem = p.name[: -len(SEGMENT_SUFFIX)]
        if stem.isdigit():
            found.append(int(stem))
    return sorted(found)


def _read_at(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(size)


class WalTail:
    """Reads sample records from ``(segment, offset)`` on; :attr:`segment` and
    :attr:`offset` are the position after the last record returned."""

    def __init__(self, data_dir: Path, segment: int, offset: int) -> None:
        self.data_dir = data_dir
        self.segment = segment
        self.offset = offset
        self.skipped_segments = 0

    def read(self, max_samples: int) -> list[WalRecord]:
        """The next whole records, about ``max_samples`` samples (at least one record when
        there is one); nothing when the log has nothing new yet."""
        out: list[WalRecord] = []
        taken = 0
        while taken < max_samples:
            on_disk = segments(self.data_dir)
            # Listed before reading: a segment with a later one beside it is done.
            later = [n for n in on_disk if n > self.segment]
            if self.segment not in on_disk:
                if not later:
                    return out
                if self.offset or self.segment:
                    log.warning(
                        "log segment %d was deleted before it was read; going on at %d",
                        self.segment,
                        later[0],
                    )
                    self.skipped_segments += later[0] - self.segment
                self.segment, self.offset = later[0], 0
                continue
            records, used, more, damage = self._read_segment(max_samples - taken)
            out.extend(records)
            taken += sum(len(r.sids) for r in records)
            self.offset += used
            if more:
                continue
            if not later:
                return out
            if damage is not None:
                log.warning(
                    "%s: %s; skipping the rest of this finished segment",
                    segment_path(self.data_dir, self.segment),
                    damage,
                )
            self.segment, self.offset = later[0], 0
        return out

    def _read_segment(self, max_samples: int) -> tuple[list[WalRecord], int, bool, str | None]:
        """Records from the current position: the records, the bytes they take, whether
        more is to be read now (``max_samples`` or the read size stopped it), and what
        stopped the read before the end of the file (a record being written, or damage)."""
        path = segment_path(self.data_dir, self.segment)
        try:
            data = _read_at(path, self.offset, _READ_BYTES)
        except FileNotFoundError:
            return [], 0, False, None
        result = read_records(data)
        if not result.records and len(data) >= _HEADER_BYTES and len(data) == _READ_BYTES:
            # One record larger than a read: read exactly it.
            length = int.from_bytes(data[:4], "little")
            data = _read_at(path, self.offset, _HEADER_BYTES + length)
            result = read_records(data)
        records: list[WalRecord] = []
        at = 0
        taken = 0
        for record in result.records:
            if taken >= max_samples:
                return records, at, True, None
            start, at = at, at + _HEADER_BYTES + len(record.payload)
            if record.kind != _SAMPLES_RECORD:
                continue
            try:
                sids, ts, values = decode_columns(record.payload)
            except CodecError as e:
                log.warning(
                    "%s: skipping an undecodable record at byte %d: %s",
                    path,
                    self.offset + start,
                    e,
                )
                continue
            records.append(WalRecord(self.segment, self.offset + start, sids, ts, values))
            taken += len(sids)
        cut_by_read = len(data) == _READ_BYTES and result.damage is not None
        return records, at, cut_by_read, None if cut_by_read else result.damage


class SeriesNames:
    """Labels of series ids, read from the store's ``series.log``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "series.log"
        # Never untracked, so frozen once for good (see StaysTracked).
        self._labels: StaysTracked[int, Labels] = StaysTracked()
        self._offset = 0
        self._inode: int | None = None

    def get(self, sid: int) -> Labels | None:
        """The labels of ``sid`` as read so far (no disk access: safe from any thread)."""
        return self._labels.get(sid)

    def resolve(self, sids: I32) -> list[int]:
        """Read what ``series.log`` gained until every id in ``sids`` is known; the ids that
        stay unknown."""
        missing = [s for s in set(sids.tolist()) if s not in self._labels]
        if missing:
            self.refresh()
            missing = [s for s in missing if s not in self._labels]
        return missing

    def refresh(self) -> None:
        """Read the records appended since the last call (all of them after a rewrite)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._inode, self._offset = st.st_ino, 0
        if st.st_size == self._offset:
            return
        data = _read_at(self.path, self._offset, st.st_size - self._offset)
        result = read_records(data)
        for record in result.records:
            if record.kind != _SERIES_RECORD:
                continue
            try:
                sid, labels = _decode_series(record.payload)
            except (ValueError, InvalidLabels) as e:
                log.warning("%s: skipping a bad series record: %s", self.path, e)
                continue
            self._labels[sid] = labels
        self._offset += result.good_bytes
