"""Silences: mute alerts whose labels match, between ``startsAt`` and ``endsAt``.

The model and its rules are Alertmanager's: at least one matcher that does not match the
empty string; a silence is pending before its start, active until its end, expired after;
expiring an active silence ends it now, expiring a pending one ends it before it starts;
updating a silence keeps its id only when its matchers are unchanged and the change does
not rewrite its past, otherwise the old one is expired and a new one created. Every change
is written to ``silences.state`` before it is acknowledged; expired silences are forgotten
after the retention. A saved silence whose matchers no longer compile (a pattern RE2 rejects,
saved by an older foresight on Python's ``re``) is dropped at load with an error in the log,
so that it cannot keep the service from starting.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from alerts.notify.matchers import MatcherError, matches, to_api
from alerts.notify.matchers import from_api as matcher_from_api
from tsdb.labels import Matcher
from tsdb.recordlog import frame, read_records, write_atomically

log = logging.getLogger(__name__)

State = Literal["pending", "active", "expired"]

_SNAPSHOT = 1
FILE = "silences.state"


class SilenceError(ValueError):
    """A silence that cannot be created, updated or expired; the message says why."""


class SilenceNotFound(SilenceError):
    """No silence has this id."""


def parse_time(text: str) -> int:
    """Unix ms of an RFC 3339 time (``Z`` or an offset; up to nanoseconds)."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    head, dot, rest = s.partition(".")
    if dot:
        n = len(rest) - len(rest.lstrip("0123456789"))
        s = f"{head}.{rest[:n][:6].ljust(6, '0')}{rest[n:]}"
    try:
        parsed = datetime.fromisoformat(s)
    except ValueError as e:
        raise SilenceError(f"invalid time {text!r}: expected RFC 3339") from e
    if parsed.tzinfo is None:
        raise SilenceError(f"invalid time {text!r}: a time zone is required")
    try:
        # In UTC, so that the API can print it back (years 1 to 9999).
        parsed = parsed.astimezone(UTC)
    except OverflowError as e:
        raise SilenceError(f"invalid time {text!r}: out of range") from e
    return round(parsed.timestamp() * 1000)


def format_time(ms: int) -> str:
    """RFC 3339 with milliseconds, as Alertmanager's API prints times."""
    seconds, rest = divmod(ms, 1000)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{rest:03d}Z"


@dataclass(frozen=True)
class Silence:
    """One silence; times in unix ms."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: int
    ends_at: int
    created_by: str
    comment: str
    updated_at: int = 0

    def state(self, now_ms: int) -> State:
        """Pending before its start, active until its end, expired from then on."""
        if now_ms < self.starts_at:
            return "pending"
        if now_ms < self.ends_at:
            return "active"
        return "expired"

    def mutes(self, labels: Mapping[str, str], now_ms: int) -> bool:
        """Whether it is active and every matcher accepts the labels."""
        return self.state(now_ms) == "active" and matches(self.matchers, labels)

    def to_api(self, now_ms: int) -> dict[str, Any]:
        """Alertmanager's ``GettableSilence``."""
        return {
            "id": self.id,
            "status": {"state": self.state(now_ms)},
            "updatedAt": format_time(self.updated_at),
            "matchers": [to_api(m) for m in self.matchers],
            "startsAt": format_time(self.starts_at),
            "endsAt": format_time(self.ends_at),
            "createdBy": self.created_by,
            "comment": self.comment,
        }


def silence_from_api(d: Mapping[str, Any]) -> Silence:
    """A silence from Alertmanager's ``PostableSilence`` (``id`` empty: a new one)."""
    if not isinstance(d, Mapping):
        raise SilenceError("a silence must be a JSON object")
    missing = [k for k in ("matchers", "startsAt", "endsAt", "createdBy", "comment") if k not in d]
    if missing:
        raise SilenceError(f"missing fields: {', '.join(missing)}")
    raw = d["matchers"]
    if not isinstance(raw, list):
        raise SilenceError("matchers: expected a list")
    try:
        found = tuple(_matcher_from_api(m) for m in raw)
    except MatcherError as e:
        raise SilenceError(f"matchers: {e}") from e
    return Silence(
        id=str(d.get("id") or ""),
        matchers=found,
        starts_at=parse_time(str(d["startsAt"])),
        ends_at=parse_time(str(d["endsAt"])),
        created_by=str(d["createdBy"]),
        comment=str(d["comment"]),
    )


def _matcher_from_api(d: Any) -> Matcher:
    if not isinstance(d, Mapping):
        raise MatcherError("each matcher must be an object with name and value")
    return matcher_from_api(d)


def validate(s: Silence) -> None:
    """Alertmanager's checks of a silence's content."""
    if not s.matchers:
        raise SilenceError("at least one matcher required")
    if all(m.matches("") for m in s.matchers):
        raise SilenceError("at least one matcher must not match the empty string")
    if s.ends_at <= s.starts_at:
        raise SilenceError("start time must be before end time")


def _order(s: Silence, now_ms: int) -> tuple[int, int]:
    state = s.state(now_ms)
    if state == "active":
        return (0, s.ends_at)
    if state == "pending":
        return (1, s.starts_at)
    return (2, -s.ends_at)


class Silences:
    """Every silence, persisted in ``directory``; times are passed in (unix ms)."""

    def __init__(self, directory: Path, retention_ms: int, fsync: bool = False) -> None:
        self.path = directory / FILE
        self.retention_ms = retention_ms
        self._fsync = fsync
        self._by_id: dict[str, Silence] = {}
        self.version = 0
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        records = read_records(self.path.read_bytes()).records
        if not records:
            return
        for d in json.loads(records[-1].payload):
            try:
                s = silence_from_api(d)
            except SilenceError as e:
                log.error("%s: dropping silence %s: %s", self.path, d.get("id"), e)
                continue
            s = replace(s, id=d["id"], updated_at=parse_time(d["updatedAt"]))
            self._by_id[s.id] = s

    def _save(self) -> None:
        self.version += 1
        data = [s.to_api(0) for s in self._by_id.values()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, frame(_SNAPSHOT, json.dumps(data).encode()), self._fsync)

    def get(self, silence_id: str) -> Silence:
        """The silence with this id, or :class:`SilenceNotFound`."""
        try:
            return self._by_id[silence_id]
        except KeyError:
            raise SilenceNotFound(f"silence {silence_id} not found") from None

    def query(self, now_ms: int, filters: Sequence[Matcher] = ()) -> list[Silence]:
        """Silences whose matchers, read as labels, pass ``filters``; active first."""
        out = [
            s
            for s in self._by_id.values()
            if matches(filters, {m.name: m.value for m in s.matchers})
        ]
        return sorted(out, key=lambda s: _order(s, now_ms))

    def set(self, posted: Silence, now_ms: int) -> str:
        """Create (empty id) or update a silence; returns its id."""
        validate(posted)
        if posted.ends_at <= now_ms:
            raise SilenceError("end time can't be in the past")
        prev = self._by_id.get(posted.id) if posted.id else None
        if posted.id and prev is None:
            raise SilenceNotFound(f"silence {posted.id} not found")
        if prev is not None and _can_update(prev, posted, now_ms):
            self._by_id[prev.id] = replace(posted, id=prev.id, updated_at=now_ms)
            self._save()
            return prev.id
        if prev is not None and prev.state(now_ms) != "expired":
            self._by_id[prev.id] = self._expired(prev, now_ms)
        new = replace(
            posted,
            id=str(uuid.uuid4()),
            starts_at=max(posted.starts_at, now_ms),
            updated_at=now_ms,
        )
        self._by_id[new.id] = new
        self._save()
        return new.id

    @staticmethod
    def _expired(s: Silence, now_ms: int) -> Silence:
        if s.state(now_ms) == "pending":
            return replace(s, starts_at=now_ms, ends_at=now_ms, updated_at=now_ms)
        return replace(s, ends_at=now_ms, updated_at=now_ms)

    def expire(self, silence_id: str, now_ms: int) -> None:
        """End a silence now (one that has not started never starts)."""
        s = self.get(silence_id)
        if s.state(now_ms) == "expired":
            raise SilenceError(f"silence {silence_id} already expired")
        self._by_id[silence_id] = self._expired(s, now_ms)
        self._save()

    def muted_by(self, labels: Mapping[str, str], now_ms: int) -> list[str]:
        """Ids of the active silences that mute an alert with these labels."""
        return [s.id for s in self._by_id.values() if s.mutes(labels, now_ms)]

    def active(self, now_ms: int) -> list[Silence]:
        """Silences in effect now."""
        return [s for s in self._by_id.values() if s.state(now_ms) == "active"]

    def collect_garbage(self, now_ms: int) -> int:
        """Forget silences expired longer than the retention; returns how many."""
        old = [i for i, s in self._by_id.items() if s.ends_at + self.retention_ms <= now_ms]
        for i in old:
            del self._by_id[i]
        if old:
            self._save()
        return len(old)


def _can_update(a: Silence, b: Silence, now_ms: int) -> bool:
    if a.matchers != b.matchers:
        return False
    state = a.state(now_ms)
    if state == "active":
        return b.starts_at == a.starts_at and b.ends_at >= now_ms
    if state == "pending":
        return b.starts_at >= now_ms
    return False
