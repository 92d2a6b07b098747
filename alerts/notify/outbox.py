"""The notification outbox: an append-only record file, so nothing queued is lost.

``enqueue`` writes the notification before anyone tries to send it; ``finish`` records
that it was delivered, rejected or dead-lettered. On open the log is replayed (a damaged
tail from a crash is cut off) and rewritten without finished entries when they dominate.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from collectors.store.records import RecordWriter, frame, recover_file, write_atomically

Outcome = Literal["delivered", "rejected", "dead"]

_ENQUEUE = 1
_FINISH = 2
_FILE = "outbox.log"


@dataclass
class Entry:
    """One notification to deliver, with its idempotency key."""

    id: str
    receiver: str
    body: bytes
    created_ms: int
    group_key: str = ""
    attempts: int = 0
    next_attempt_ms: int = 0
    last_error: str = ""


def _encode(e: Entry) -> bytes:
    head = {
        "id": e.id,
        "receiver": e.receiver,
        "created_ms": e.created_ms,
        "group_key": e.group_key,
    }
    return json.dumps(head).encode() + b"\n" + e.body


def _decode(payload: bytes) -> Entry:
    head, _, body = payload.partition(b"\n")
    d = json.loads(head)
    return Entry(d["id"], d["receiver"], body, d["created_ms"], d.get("group_key", ""))


class Outbox:
    """Pending notifications in enqueue order, persisted in ``directory``."""

    def __init__(self, directory: Path, fsync: bool = False) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / _FILE
        self._fsync = fsync
        self.pending: dict[str, Entry] = {}
        self.dead: dict[str, Entry] = {}
        self.counts: dict[str, int] = {"delivered": 0, "rejected": 0, "dead": 0}
        finished = 0
        if self.path.exists():
            for record in recover_file(self.path):
                if record.kind == _ENQUEUE:
                    e = _decode(record.payload)
                    self.pending[e.id] = e
                elif record.kind == _FINISH:
                    d = json.loads(record.payload)
                    e_done = self.pending.pop(d["id"], None)
                    finished += 1
                    if d["outcome"] == "dead" and e_done is not None:
                        e_done.last_error = d.get("error", "")
                        self.dead[e_done.id] = e_done
        if finished > len(self.pending):
            self._rewrite()
        self._writer = RecordWriter(self.path, fsync)

    def _rewrite(self) -> None:
        data = b"".join(
            frame(_ENQUEUE, _encode(e)) for e in [*self.dead.values(), *self.pending.values()]
        )
        data += b"".join(
            frame(
                _FINISH, json.dumps({"id": e.id, "outcome": "dead", "error": e.last_error}).encode()
            )
            for e in self.dead.values()
        )
        write_atomically(self.path, data, self._fsync)

    def enqueue(self, receiver: str, body: bytes, now_ms: int, group_key: str = "") -> Entry:
        """Persist a notification; it is delivered at least once from now on."""
        entry = Entry(uuid.uuid4().hex, receiver, body, now_ms, group_key, next_attempt_ms=now_ms)
        self._writer.write(frame(_ENQUEUE, _encode(entry)))
        self.pending[entry.id] = entry
        return entry

    def finish(self, entry_id: str, outcome: Outcome, error: str = "") -> None:
        """Record the end of a notification's life."""
        entry = self.pending.pop(entry_id, None)
        if entry is None:
            return
        record = {"id": entry_id, "outcome": outcome, "error": error}
        self._writer.write(frame(_FINISH, json.dumps(record).encode()))
        self.counts[outcome] += 1
        if outcome == "dead":
            entry.last_error = error
            self.dead[entry_id] = entry

    def close(self) -> None:
        self._writer.close()
