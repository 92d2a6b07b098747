"""A rule's result rows of last evaluation, found again by their label codes.

A rule returns mostly the same series at every evaluation. What it made of each series
last time (the store id of the series it wrote, an alert's labels and templates) is kept
by row; this evaluation's rows are matched against last time's as integer arrays, so only
series seen for the first time cost label tuples and hashing.

Only rows made of store codes are remembered: codes a query made up
(``label_replace``...) are numbered per query and mean nothing to the next one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from promql.labelsets import LabelTable, factorize
from tsdb.strings import StringTable

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


class KnownRows:
    """The label codes of the rows remembered from one evaluation (see :meth:`remember`)."""

    def __init__(self) -> None:
        self._base: StringTable | None = None
        self._names: tuple[str, ...] = ()
        self._codes: I32 = np.zeros((0, 0), dtype=np.int32)
        # The codes last matched row for row (remembering them again changes nothing).
        self._same: I32 | None = None

    def __len__(self) -> int:
        return int(self._codes.shape[0])

    def forget(self) -> None:
        """Remember no row."""
        self._base, self._codes, self._same = None, self._codes[:0], None

    def same(self, table: LabelTable) -> bool:
        """Whether ``table``'s rows are the rows remembered, label for label and in order."""
        return (
            table.strings.base is self._base
            and table.names == self._names
            and np.array_equal(table.codes, self._codes)
        )

    def match(self, table: LabelTable) -> I64:
        """For each row of ``table``, the remembered row with the same labels, or -1."""
        n = len(table)
        self._same = None
        if table.strings.base is not self._base or not len(self) or not n:
            return np.full(n, -1, dtype=np.int64)
        if self.same(table):
            self._same = table.codes
            return np.arange(n, dtype=np.int64)
        names = sorted({*self._names, *table.names})
        old = LabelTable(self._names, self._codes, table.strings)
        stacked = np.concatenate([old.aligned(names), table.aligned(names)])
        first, ids = factorize(stacked)
        known = len(self)
        group_first = first[ids[known:]]
        return np.where(group_first < known, group_first, -1)

    def remember(self, table: LabelTable) -> I64:
        """Remember the rows of ``table`` that can be found again; returns their indices
        (the order in which :meth:`match` will number them)."""
        n = len(table)
        if table.codes is self._same and table.strings.base is self._base:
            return np.arange(n, dtype=np.int64)
        # Rows new to the store had made-up codes: the store has codes for them by now.
        codes = table.strings.rebased(table.codes)
        stable = table.strings.stable_rows(codes) if n else np.zeros(0, dtype=bool)
        kept: I64 = np.arange(n, dtype=np.int64) if stable.all() else np.flatnonzero(stable)
        self._base, self._names = table.strings.base, table.names
        self._codes = codes if len(kept) == n else codes[kept]
        return kept
