"""The object store: every API object, one resourceVersion counter, and watch history.

Objects are kept as the dicts that were stored, together with their JSON encoding, so a list
of 30,000 pods is a join of cached bytes. Nobody may mutate a stored dict: writers build a new
one (``objects.clone``) and hand it over.

All of it runs on one event loop, so a snapshot plus a subscription taken without an
``await`` in between is consistent, as an etcd revision would be.
"""

from __future__ import annotations

import asyncio
import bisect
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from simulator.errors import ApiError
from simulator.objects import KubeObject

__all__ = ["ObjectStore", "Stored", "Subscription", "WatchEvent"]

StorageKey = tuple[str, str]  # (group, plural)
ObjectKey = tuple[str, str]  # (namespace or "", name)


def encode(obj: KubeObject) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(slots=True)
class Stored:
    """One stored object and its JSON bytes."""

    obj: KubeObject
    raw: bytes
    rv: int


@dataclass(slots=True)
class WatchEvent:
    """A change as watchers see it (``ADDED``, ``MODIFIED``, ``DELETED``)."""

    type: str
    rv: int
    namespace: str
    stored: Stored

    def line(self) -> bytes:
        """The watch stream line for this event."""
        return b'{"type":"' + self.type.encode() + b'","object":' + self.stored.raw + b"}\n"


@dataclass(eq=False)
class Subscription:
    """A live feed of one storage key's changes."""

    key: StorageKey
    queue: asyncio.Queue[WatchEvent | None] = field(default_factory=asyncio.Queue)


class _Table:
    """The objects of one resource (all namespaces) plus a lazily sorted key list."""

    def __init__(self, history_limit: int) -> None:
        self.objects: dict[ObjectKey, Stored] = {}
        self._sorted: list[ObjectKey] | None = None
        self.history: deque[WatchEvent] = deque(maxlen=history_limit)
        self.compacted_rv = 0
        self.subscribers: set[Subscription] = set()

    def sorted_keys(self) -> list[ObjectKey]:
        if self._sorted is None:
            self._sorted = sorted(self.objects)
        return self._sorted

    def changed_keys(self) -> None:
        self._sorted = None


class ObjectStore:
    """Stored objects by (group, plural), with a global resourceVersion and watch history."""

    def __init__(self, history_limit: int = 20_000) -> None:
        self._tables: dict[StorageKey, _Table] = {}
        self._rv = 1
        self._history_limit = history_limit
        # Called after every change: the cluster uses it to wake its controllers.
        self.listeners: list[Callable[[StorageKey, WatchEvent], None]] = []

    @property
    def resource_version(self) -> int:
        return self._rv

    def _table(self, key: StorageKey) -> _Table:
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = _Table(self._history_limit)
        return table

    def get(self, key: StorageKey, namespace: str, name: str) -> Stored | None:
        return self._table(key).objects.get((namespace, name))

    def count(self, key: StorageKey) -> int:
        return len(self._table(key).objects)

    def items(
        self, key: StorageKey, namespace: str | None = None, after: ObjectKey | None = None
    ) -> Iterable[Stored]:
        """Objects in (namespace, name) order, optionally in one namespace or after a key."""
        table = self._table(key)
        keys = table.sorted_keys()
        start = 0
        if namespace is not None:
            start = bisect.bisect_left(keys, (namespace, ""))
        if after is not None:
            start = max(start, bisect.bisect_right(keys, after))
        objects = table.objects
        for i in range(start, len(keys)):
            k = keys[i]
            if namespace is not None and k[0] != namespace:
                break
            yield objects[k]

    def count_after(self, key: StorageKey, namespace: str | None, after: ObjectKey) -> int:
        """How many objects (of one namespace, if given) sort after ``after``."""
        keys = self._table(key).sorted_keys()
        start = bisect.bisect_right(keys, after)
        if namespace is None:
            return len(keys) - start
        end = bisect.bisect_left(keys, (namespace + "\x00", ""))
        return max(0, end - start)

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _stamp(self, obj: KubeObject) -> Stored:
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        return Stored(obj, encode(obj), rv)

    def create(self, key: StorageKey, group_resource: str, obj: KubeObject) -> Stored:
        """Store a new object; 409 AlreadyExists if its name is taken."""
        m = obj["metadata"]
        okey = (m.get("namespace", ""), m["name"])
        table = self._table(key)
        if okey in table.objects:
            raise ApiError.already_exists(group_resource, okey[1])
        stored = self._stamp(obj)
        table.objects[okey] = stored
        table.changed_keys()
        self._publish(key, table, "ADDED", okey[0], stored)
        return stored

    def update(self, key: StorageKey, group_resource: str, obj: KubeObject) -> Stored:
        """Replace an object; 409 Conflict if ``metadata.resourceVersion`` is set and stale."""
        m = obj["metadata"]
        okey = (m.get("namespace", ""), m["name"])
        table = self._table(key)
        current = table.objects.get(okey)
        if current is None:
            raise ApiError.not_found(group_resource, okey[1])
        expected = m.get("resourceVersion")
        if expected not in (None, "") and str(expected) != str(current.rv):
            raise ApiError.conflict(group_resource, okey[1])
        stored = self._stamp(obj)
        table.objects[okey] = stored
        self._publish(key, table, "MODIFIED", okey[0], stored)
        return stored

    def delete(
        self,
        key: StorageKey,
        group_resource: str,
        namespace: str,
        name: str,
        expected_rv: str | None = None,
        expected_uid: str | None = None,
    ) -> Stored:
        """Remove an object; the returned copy carries the deletion's resourceVersion."""
        okey = (namespace, name)
        table = self._table(key)
        current = table.objects.get(okey)
        if current is None:
            raise ApiError.not_found(group_resource, name)
        if expected_rv and expected_rv != str(current.rv):
            raise ApiError.conflict(group_resource, name)
        if expected_uid and expected_uid != current.obj["metadata"].get("uid"):
            raise ApiError.conflict(group_resource, name)
        del table.objects[okey]
        table.changed_keys()
        final = dict(current.obj)
        final["metadata"] = dict(current.obj["metadata"])
        stored = self._stamp(final)
        self._publish(key, table, "DELETED", namespace, stored)
        return stored

    def _publish(
        self, key: StorageKey, table: _Table, kind: str, namespace: str, stored: Stored
    ) -> None:
        event = WatchEvent(kind, stored.rv, namespace, stored)
        if len(table.history) == table.history.maxlen:
            table.compacted_rv = table.history[0].rv
        table.history.append(event)
        for sub in table.subscribers:
            sub.queue.put_nowait(event)
        for listener in self.listeners:
            listener(key, event)

    def events_since(self, key: StorageKey, group_resource: str, rv: int) -> list[WatchEvent]:
        """Changes after ``rv``; 410 Gone when history no longer reaches back that far."""
        table = self._table(key)
        if rv < table.compacted_rv:
            raise ApiError.gone(f"too old resource version: {rv} ({table.compacted_rv + 1})")
        history = table.history
        # History is in rv order; walk back from the end, which is where resumes usually land.
        i = len(history)
        while i > 0 and history[i - 1].rv > rv:
            i -= 1
        return [history[j] for j in range(i, len(history))]

    def subscribe(self, key: StorageKey) -> Subscription:
        sub = Subscription(key)
        self._table(key).subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._table(sub.key).subscribers.discard(sub)

    def close_watches(self, key: StorageKey | None = None) -> int:
        """End every open watch (of one key, or all); returns how many were ended."""
        ended = 0
        for k, table in self._tables.items():
            if key is not None and k != key:
                continue
            for sub in table.subscribers:
                sub.queue.put_nowait(None)
                ended += 1
        return ended

    def compact(self) -> None:
        """Forget all watch history, as etcd compaction does: older resumes get 410 Gone."""
        for table in self._tables.values():
            table.history.clear()
            table.compacted_rv = self._rv

    def drop_key(self, key: StorageKey) -> list[Stored]:
        """Remove every object of a resource (its CRD was deleted), publishing deletions."""
        table = self._table(key)
        removed = []
        for okey in list(table.sorted_keys()):
            stored = table.objects[okey]
            m = stored.obj["metadata"]
            removed.append(self.delete(key, "", okey[0], m["name"]))
        return removed
