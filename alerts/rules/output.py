"""The series a rule writes back to the store, found again by id at every evaluation.

A rule writes mostly the same series every interval. Looking each one up by its label
tuple costs a Python object and a hash per series; instead a rule remembers the store ids
it wrote last time by row (:mod:`alerts.rules.rows`). Only series seen for the first time
(or whose labels the query made up) are turned into tuples and looked up in the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from alerts.rules.rows import KnownRows
from promql.labelsets import LabelTable
from tsdb import UnknownSeries
from tsdb.labels import Labels
from tsdb.strings import StringTable

I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]

_NO_REFS: I32 = np.zeros(0, dtype=np.int32)


class Appender(Protocol):
    """Where rule output goes (the store): series ids by labels, samples by id.

    ``generation`` changes when ids may have gone stale (retention forgot series).
    """

    generation: int

    def ref(self, labels: Mapping[str, str] | Labels) -> int: ...

    def refs(self, label_sets: Sequence[Labels], distinct: bool = False) -> I32: ...

    def refs_coded(
        self,
        label_sets: Sequence[Labels],
        names: Sequence[str],
        codes: I32,
        strings: StringTable,
        distinct: bool = False,
    ) -> I32: ...

    def labels(self, ref: int) -> Labels: ...

    def append_batch(self, refs: I32, ts_ms: int, values: F64) -> None: ...


class RuleOutput:
    """What one rule wrote at its last evaluation and the ids of those series."""

    def __init__(self) -> None:
        self.written: I32 = _NO_REFS
        self._generation: int | None = None
        # Recording rules: last evaluation's rows and their ids.
        self._rows = KnownRows()
        self._refs: I32 = _NO_REFS
        # Alerting rules: (alert labels, alert state) → id of its ALERTS series, and alert
        # labels → id of its ALERTS_FOR_STATE series.
        self.alert_refs: dict[tuple[Labels, str], int] = {}
        self.for_state_refs: dict[Labels, int] = {}
        # What they wrote last time: ids and values (None: to be made again).
        self.alerts_written: tuple[I32, F64] | None = None

    def check(self, appender: Appender) -> None:
        """Forget remembered ids if the store may have dropped some of them."""
        generation = appender.generation
        if self._generation == generation:
            return
        if self._generation is not None:
            self._rows.forget()
            self._refs = _NO_REFS
            self.alert_refs.clear()
            self.for_state_refs.clear()
            self.alerts_written = None
            self.written = _alive(appender, self.written)
        self._generation = generation

    def writes_as_last(self, table: LabelTable) -> bool:
        """Whether ``table`` names the series of the last :meth:`table_refs`, in order."""
        return self._rows.same(table)

    def table_refs(self, appender: Appender, table: LabelTable) -> I32:
        """The store ids of the series ``table``'s rows name (created on first sight); its
        rows are distinct (a recording rule's output is checked for that first)."""
        self.check(appender)
        known = self._rows.match(table)
        misses = np.flatnonzero(known < 0)
        refs = np.full(len(table), -1, dtype=np.int32)
        hits = np.flatnonzero(known >= 0)
        refs[hits] = self._refs[known[hits]]
        if len(misses):
            new = table.take(misses)
            # Values the query made up since the store gave them codes take the store's.
            codes = new.strings.rebased(new.codes)
            refs[misses] = appender.refs_coded(
                new.tuples(), new.names, codes, new.strings.base, distinct=True
            )
        self._refs = refs[self._rows.remember(table)]
        return refs

    def stale(self, now: I32) -> I32:
        """Ids written last time but not now; ``now`` becomes what was written."""
        written, self.written = self.written, now
        if len(now) == len(written) and np.array_equal(now, written):
            # The same series as last time, in the same order (most rules, most rounds):
            # a comparison, not a sort.
            return _NO_REFS
        gone = np.setdiff1d(written, now, assume_unique=True)
        return gone.astype(np.int32, copy=False)


def _alive(appender: Appender, refs: I32) -> I32:
    """The ids the store still knows (ids are never reused, so a known id is the same
    series)."""
    kept = []
    for ref in refs.tolist():
        try:
            appender.labels(ref)
        except UnknownSeries:
            continue
        kept.append(ref)
    return np.array(kept, dtype=np.int32)
