"""Small numpy helpers shared by the index and the read path."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


def concat_ranges(lo: npt.NDArray[np.integer], hi: npt.NDArray[np.integer]) -> I64:
    """The concatenation of ``arange(lo[i], hi[i])`` for every i, without a Python loop."""
    counts = (hi - lo).astype(np.int64)
    total = int(counts.sum())
    if not total:
        return np.empty(0, np.int64)
    shifts = np.repeat(lo.astype(np.int64) - (np.cumsum(counts) - counts), counts)
    rows: I64 = np.arange(total, dtype=np.int64) + shifts
    return rows
