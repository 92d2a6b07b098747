"""The durable record format: append-only files of checksummed records.

The store keeps its series log and write-ahead log in it; the alert state, silences and the
notification outbox reuse it for their own files.

Each record is ``length (u32) | kind (u8) | crc32 of kind and payload (u32) | payload``. A
reader stops at the first record that is truncated or fails its checksum; everything before
it is intact, everything from it on is the damaged tail that a crash (or a bad disk) left.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<IBI")
MAX_RECORD = 1 << 30


@dataclass(frozen=True)
class Record:
    kind: int
    payload: bytes


def frame(kind: int, payload: bytes) -> bytes:
    """One record, ready to append."""
    crc = zlib.crc32(payload, zlib.crc32(bytes((kind,))))
    return _FRAME.pack(len(payload), kind, crc) + payload


@dataclass
class ReadResult:
    records: list[Record]
    good_bytes: int
    damage: str | None


def read_records(data: bytes) -> ReadResult:
    """Every intact record from the start, and where and why reading stopped."""
    records: list[Record] = []
    at = 0
    damage = None
    while at < len(data):
        if len(data) - at < _FRAME.size:
            damage = f"truncated record header at byte {at}"
            break
        length, kind, crc = _FRAME.unpack_from(data, at)
        end = at + _FRAME.size + length
        if length > MAX_RECORD or end > len(data):
            damage = f"truncated record at byte {at}"
            break
        payload = data[at + _FRAME.size : end]
        if zlib.crc32(payload, zlib.crc32(bytes((kind,)))) != crc:
            damage = f"checksum mismatch in record at byte {at}"
            break
        records.append(Record(kind, bytes(payload)))
        at = end
    return ReadResult(records, at, damage)


def recover_file(path: Path) -> list[Record]:
    """Read a record file, cutting off a damaged tail (with a warning) so appends can go on."""
    data = path.read_bytes()
    result = read_records(data)
    if result.damage is not None:
        lost = len(data) - result.good_bytes
        log.warning(
            "%s: %s; dropping the last %d bytes and keeping %d intact records",
            path,
            result.damage,
            lost,
            len(result.records),
        )
        with path.open("r+b") as f:
            f.truncate(result.good_bytes)
    return result.records


class RecordWriter:
    """Appends records to a file through the OS, so a process crash loses nothing written.

    A write that fails (a full disk: ENOSPC, EDQUOT; EIO) is undone: the file is cut back to
    its size before the write, so a torn record never sits in front of later ones (a reader
    stops at the first bad record and would drop everything behind it). If even the cut
    fails, the writer refuses further writes until a later attempt makes it."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self._fsync = fsync
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        # Where the file must be cut before anything else is appended; None when it is whole.
        self._cut_at: int | None = None

    def write(self, data: bytes) -> None:
        """Append already framed records, all of them or (raising OSError) none."""
        if self._cut_at is not None:
            try:
                os.ftruncate(self._fd, self._cut_at)
            except OSError as e:
                raise OSError(
                    e.errno, f"cannot cut a failed write: {e.strerror}", str(self.path)
                ) from e
            self._cut_at = None
        start = self.size()
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self._fsync:
                os.fsync(self._fd)
        except OSError as e:
            self._undo(start)
            # os.write names no file; whoever logs this needs to know which.
            raise OSError(e.errno, e.strerror, str(self.path)) from e

    def _undo(self, start: int) -> None:
        try:
            os.ftruncate(self._fd, start)
        except OSError as e:
            self._cut_at = start
            log.warning(
                "%s: cannot cut a failed write back to %d bytes yet: %s", self.path, start, e
            )

    @property
    def torn(self) -> bool:
        """Whether a failed write is still in the file: nothing is appended until it is cut."""
        return self._cut_at is not None

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def close(self) -> None:
        if self._fd >= 0:
            if self._cut_at is not None:
                # Last chance; a torn tail left now is cut off by the next open's recovery.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._cut_at)
            os.close(self._fd)
            self._fd = -1


def write_atomically(path: Path, data: bytes, fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        # A half-written file would only hold the space a full disk needs back.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def iter_files(directory: Path, suffix: str) -> Iterator[tuple[int, Path]]:
    """``(number, path)`` of files named ``<number><suffix>``, in numeric order."""
    found = []
    for p in directory.glob(f"*{suffix}"):
        stem = p.name[: -len(suffix)]
        if stem.isdigit():
            found.append((int(stem), p))
    yield from sorted(found)
