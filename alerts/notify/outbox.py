"""The notification outbox: an append-only record file, so nothing queued is lost.

``enqueue`` writes the notification before anyone tries to send it; ``finish`` records
that it was delivered, rejected or dead-lettered. The enqueue record also carries the
notification log entry of its aggregation group (what the group last notified, Alertmanager's
``nflog``), so the queueing and the memory of having queued are one write: a crash cannot
leave a notification queued but forgotten as notified, or the reverse. On open the log is
replayed (a damaged tail from a crash is cut off) and rewritten without finished entries
when they dominate.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tsdb.recordlog import (
    Record,
    RecordWriter,
    frame,
    read_records,
    recover_file,
    write_atomically,
)

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "rejected", "dead"]

_ENQUEUE = 1
_FINISH = 2
_LOG = 3
FILE = "outbox.log"


@dataclass(frozen=True)
class LogEntry:
    """What an aggregation group last notified to one integration (fingerprints)."""

    firing: frozenset[str]
    resolved: frozenset[str]
    ts_ms: int

    def to_json(self) -> list[Any]:
        return [sorted(self.firing), sorted(self.resolved), self.ts_ms]

    @classmethod
    def from_json(cls, x: list[Any]) -> LogEntry:
        return cls(frozenset(x[0]), frozenset(x[1]), int(x[2]))


@dataclass
class Entry:
    """One notification to deliver to one integration; ``id`` is its idempotency key."""

    id: str
    receiver: str
    body: bytes
    created_ms: int
    group_key: str = ""
    attempts: int = 0
    next_attempt_ms: int = 0
    last_error: str = ""
    log: LogEntry | None = field(default=None, repr=False)


def log_key(group_key: str, integration: str) -> str:
    """The notification log's key: one per aggregation group and integration."""
    return f"{group_key}\x00{integration}"


def _encode(e: Entry) -> bytes:
    head: dict[str, Any] = {
        "id": e.id,
        "receiver": e.receiver,
        "created_ms": e.created_ms,
        "group_key": e.group_key,
    }
    if e.log is not None:
        head["log"] = e.log.to_json()
    return json.dumps(head).encode() + b"\n" + e.body


def _decode(payload: bytes) -> Entry:
    head, _, body = payload.partition(b"\n")
    d = json.loads(head)
    log = LogEntry.from_json(d["log"]) if "log" in d else None
    return Entry(
        d["id"],
        d["receiver"],
        body,
        d["created_ms"],
        d.get("group_key", ""),
        next_attempt_ms=d["created_ms"],
        log=log,
    )


@dataclass
class Replayed:
    """What a replay of the outbox file found."""

    pending: dict[str, Entry] = field(default_factory=dict)
    dead: dict[str, Entry] = field(default_factory=dict)
    log: dict[str, LogEntry] = field(default_factory=dict)
    finished: int = 0


def replay(records: list[Record]) -> Replayed:
    """Rebuild pending and dead entries and the notification log from records."""
    out = Replayed()
    for record in records:
        if record.kind == _ENQUEUE:
            e = _decode(record.payload)
            out.pending[e.id] = e
            if e.log is not None:
                out.log[log_key(e.group_key, e.receiver)] = e.log
        elif record.kind == _FINISH:
            d = json.loads(record.payload)
            done = out.pending.pop(d["id"], None)
            out.finished += 1
            if d["outcome"] == "dead" and done is not None:
                done.last_error = d.get("error", "")
                out.dead[done.id] = done
        elif record.kind == _LOG:
            out.log.update((k, LogEntry.from_json(v)) for k, v in json.loads(record.payload))
    return out


def read_outbox(directory: Path) -> Replayed:
    """The outbox as it is on disk, without changing the file (safe while it is in use)."""
    path = directory / FILE
    if not path.exists():
        return Replayed()
    return replay(read_records(path.read_bytes()).records)


class Outbox:
    """Pending notifications in enqueue order, persisted in ``directory``."""

    def __init__(self, directory: Path, fsync: bool = False, retention_ms: int = 0) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILE
        self._fsync = fsync
        self.retention_ms = retention_ms
        found = replay(recover_file(self.path)) if self.path.exists() else Replayed()
        self.pending = found.pending
        self.dead = found.dead
        self.log = found.log
        self.counts: dict[str, int] = {"delivered": 0, "rejected": 0, "dead": 0}
        if found.finished > len(self.pending):
            self._rewrite()
        self._writer = RecordWriter(self.path, fsync)
        # Records a full or failing disk refused, in order: written before any later record.
        self._unwritten: list[bytes] = []
        self._failing = False

    @property
    def write_failing(self) -> bool:
        """Whether records wait in memory because the disk refused them."""
        return bool(self._unwritten)

    def _write(self, record: bytes) -> None:
        # A disk that refuses a write must not stop notifications: the entry is delivered
        # from memory, and its records reach the file, in order, once the disk takes them.
        self._unwritten.append(record)
        self._drain()

    def _drain(self) -> None:
        try:
            while self._unwritten:
                self._writer.write(self._unwritten[0])
                self._unwritten.pop(0)
        except OSError as e:
            if not self._failing:
                self._failing = True
                log.error(
                    "cannot write the outbox %s (%s): notifications go on from memory and are "
                    "written when the disk takes them; a crash meanwhile loses them",
                    self.path,
                    e.strerror or e,
                )
            return
        if self._failing:
            self._failing = False
            log.warning("the outbox %s is written again", self.path)

    def _rewrite(self) -> None:
        if self.retention_ms and self.log:
            newest = max(e.ts_ms for e in self.log.values())
            self.log = {k: e for k, e in self.log.items() if e.ts_ms + self.retention_ms > newest}
        data = frame(_LOG, json.dumps([[k, e.to_json()] for k, e in self.log.items()]).encode())
        data += b"".join(
            frame(_ENQUEUE, _encode(e)) for e in [*self.dead.values(), *self.pending.values()]
        )
        data += b"".join(
            frame(
                _FINISH, json.dumps({"id": e.id, "outcome": "dead", "error": e.last_error}).encode()
            )
            for e in self.dead.values()
        )
        write_atomically(self.path, data, self._fsync)

    def enqueue(
        self,
        receiver: str,
        body: bytes,
        now_ms: int,
        group_key: str = "",
        log: LogEntry | None = None,
    ) -> Entry:
        """Persist a notification (and the group's log entry); from now on it is delivered
        at least once."""
        entry = Entry(
            uuid.uuid4().hex, receiver, body, now_ms, group_key, next_attempt_ms=now_ms, log=log
        )
        self._write(frame(_ENQUEUE, _encode(entry)))
        self.pending[entry.id] = entry
        if log is not None:
            self.log[log_key(group_key, receiver)] = log
        return entry

    def record_log(self, group_key: str, receiver: str, log: LogEntry) -> None:
        """Remember a group's notification that had nothing to send (all filtered out)."""
        key = log_key(group_key, receiver)
        self._write(frame(_LOG, json.dumps([[key, log.to_json()]]).encode()))
        self.log[key] = log

    def finish(self, entry_id: str, outcome: Outcome, error: str = "") -> None:
        """Record the end of a notification's life."""
        entry = self.pending.pop(entry_id, None)
        if entry is None:
            return
        record = {"id": entry_id, "outcome": outcome, "error": error}
        self._write(frame(_FINISH, json.dumps(record).encode()))
        self.counts[outcome] += 1
        if outcome == "dead":
            entry.last_error = error
            self.dead[entry_id] = entry

    def close(self) -> None:
        """Write what waits, if the disk takes it now, and close the file."""
        self._drain()
        if self._unwritten:
            log.error("closing the outbox with %d records unwritten", len(self._unwritten))
        self._writer.close()
