"""The series index: label sets to series ids, and an inverted index for matchers.

Series ids are assigned in increasing order and never reused, so every postings list is
sorted by construction and can be intersected with numpy without sorting.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from collectors.store.labels import Labels, Matcher, MatchType

IdArray = npt.NDArray[np.int32]

_EMPTY: IdArray = np.empty(0, dtype=np.int32)


class SeriesIndex:
    """Label set ↔ id, and postings ``name → value → ids`` for selection."""

    def __init__(self) -> None:
        self._ids: dict[Labels, int] = {}
        self._labels: dict[int, Labels] = {}
        self._postings: dict[str, dict[str, array[int]]] = {}
        self._all = array("i")
        self.next_id = 0

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, labels: Labels) -> int | None:
        """The id of a label set, if known."""
        return self._ids.get(labels)

    def labels(self, sid: int) -> Labels:
        """The label set of an id."""
        return self._labels[sid]

    def add(self, labels: Labels, sid: int | None = None) -> int:
        """Register a new series; ``sid`` is given when recovering from disk."""
        if sid is None:
            sid = self.next_id
        elif sid < self.next_id:
            raise ValueError(f"series id {sid} is not increasing (next is {self.next_id})")
        self.next_id = sid + 1
        labels = tuple((sys.intern(k), sys.intern(v)) for k, v in labels)
        self._ids[labels] = sid
        self._labels[sid] = labels
        self._all.append(sid)
        for name, value in labels:
            self._postings.setdefault(name, {}).setdefault(value, array("i")).append(sid)
        return sid

    def remove(self, sids: Iterable[int]) -> None:
        """Forget series (their data is gone); rebuilds the postings once."""
        gone = set(sids)
        if not gone:
            return
        for sid in gone:
            labels = self._labels.pop(sid, None)
            if labels is not None:
                del self._ids[labels]
        self._rebuild()

    def _rebuild(self) -> None:
        self._postings = {}
        self._all = array("i")
        for sid in sorted(self._labels):
            self._all.append(sid)
            for name, value in self._labels[sid]:
                self._postings.setdefault(name, {}).setdefault(value, array("i")).append(sid)

    def all_ids(self) -> IdArray:
        """Every live series id, sorted."""
        return _as_ids(self._all)

    def items(self) -> Iterable[tuple[int, Labels]]:
        """(id, labels) of every series, by id."""
        return sorted(self._labels.items())

    def label_names(self) -> list[str]:
        """Every label name in use, sorted."""
        return sorted(self._postings)

    def label_values(self, name: str) -> list[str]:
        """Every value of a label name, sorted."""
        return sorted(self._postings.get(name, {}))

    def select(self, matchers: Sequence[Matcher]) -> IdArray:
        """Ids of the series matching every matcher, sorted.

        As in Prometheus, a matcher that matches the empty string also matches series that
        lack the label.
        """
        result: IdArray | None = None
        # Narrow first with the matchers that cannot match the empty value.
        ordered = sorted(matchers, key=lambda m: m.matches(""))
        for m in ordered:
            ids = self._matching(m)
            result = ids if result is None else np.intersect1d(result, ids, assume_unique=True)
            if not len(result):
                return _EMPTY
        return self.all_ids() if result is None else result

    def _matching(self, m: Matcher) -> IdArray:
        values = self._postings.get(m.name, {})
        if m.type is MatchType.EQUAL and m.value != "":
            ids = values.get(m.value)
            return _as_ids(ids) if ids else _EMPTY
        if not m.matches(""):
            return self._union([ids for v, ids in values.items() if m.matches(v)])
        # Series without the label match too: all minus those whose value does not match.
        misses = [ids for v, ids in values.items() if not m.matches(v)]
        if not misses:
            return self.all_ids()
        keep = np.zeros(self.next_id, dtype=bool)
        keep[_as_ids(self._all)] = True
        for ids in misses:
            keep[_view(ids)] = False
        return np.flatnonzero(keep).astype(np.int32)

    def _union(self, postings: list[array[int]]) -> IdArray:
        if not postings:
            return _EMPTY
        if len(postings) == 1:
            return _as_ids(postings[0])
        # Ids are dense, so marking them costs less than sorting or hashing the lists.
        hit = np.zeros(self.next_id, dtype=bool)
        for ids in postings:
            hit[_view(ids)] = True
        return np.flatnonzero(hit).astype(np.int32)


def _as_ids(ids: array[int]) -> IdArray:
    # A copy: a numpy view would pin the array's buffer and make the next append fail.
    return np.frombuffer(ids, dtype=np.int32).copy() if len(ids) else _EMPTY


def _view(ids: array[int]) -> IdArray:
    """A view for immediate use only (see :func:`_as_ids`); dropped before any append."""
    return np.frombuffer(ids, dtype=np.int32) if len(ids) else _EMPTY
