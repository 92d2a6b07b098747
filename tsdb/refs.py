"""A cache of series ids for writers that append the same series every cycle."""

from __future__ import annotations

from tsdb.labels import Labels
from tsdb.store import Store


class RefCache:
    """Label set → series id, emptied when retention forgets series (ids may then go stale)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._refs: dict[Labels, int] = {}
        self._generation = store.generation

    def __call__(self, labels: Labels) -> int:
        if self._store.generation != self._generation:
            self._refs.clear()
            self._generation = self._store.generation
        ref = self._refs.get(labels)
        if ref is None:
            ref = self._refs[labels] = self._store.ref(labels)
        return ref
