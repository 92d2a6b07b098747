"""Writing metric families to the store at one time, with staleness for what disappeared.

Families are written under the names they have on ``/metrics`` (:attr:`Family.sample_name`),
so a rule over the store reads what a Prometheus scraping foresight reads. A series written
by the previous call and absent from this one gets a staleness marker, so that a deleted
object does not linger for a lookback period in queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from runtime.families import Family
from tsdb.arrays import distinct
from tsdb.labels import make_labels
from tsdb.refs import RefCache
from tsdb.store import Store

__all__ = ["FamilyRecorder"]


class FamilyRecorder:
    """Appends families' samples to ``store``; one recorder per writer of a set of series."""

    def __init__(self, store: Store, labels: Mapping[str, str] | None = None) -> None:
        """``labels`` are added to every sample (a shard's name, say)."""
        self._store = store
        self._labels = dict(labels or {})
        self._ref = RefCache(store)
        # The ids written last time, sorted, as an array: a set of hundreds of thousands of
        # label sets would be walked by every full garbage collection.
        self._written: npt.NDArray[np.int32] = np.zeros(0, np.int32)
        self._generation = store.generation

    def record(self, families: Sequence[Family], ts_ms: int) -> int:
        """Append every sample at ``ts_ms``; returns how many were written."""
        refs: list[int] = []
        values: list[float] = []
        for family in families:
            name = family.sample_name
            for labels, value in family.samples:
                key = make_labels({**labels, **self._labels, "__name__": name})
                refs.append(self._ref(key))
                values.append(value)
        written = distinct(np.array(refs, np.int32))
        if self._store.generation == self._generation:
            for sid in np.setdiff1d(self._written, written, assume_unique=True).tolist():
                self._store.mark_stale(sid, ts_ms)
        # Otherwise retention forgot series meanwhile and old ids may name none: what
        # vanished then ends by the lookback rather than a marker.
        self._written, self._generation = written, self._store.generation
        if refs:
            self._store.append_batch(np.array(refs, np.int32), ts_ms, np.array(values, np.float64))
        return len(refs)
