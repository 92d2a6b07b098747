"""Writes to a store forever, printing each batch number once it is flushed; killed by a test."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

T0 = 1_700_000_000_000
SERIES = 50


def main() -> None:
    data_dir = Path(sys.argv[1])
    clock = VirtualClock(start=T0 / 1000)
    # A small head and short blocks, so that kills also land in sealing and merging.
    store = Store(
        StoreSettings(data_dir=data_dir, head_max_samples=2_000, block_duration_minutes=10), clock
    )
    start = int(sys.argv[2])
    refs = np.array(
        [store.ref({"__name__": "crash", "i": str(i)}) for i in range(SERIES)], np.int32
    )
    batch = start
    while True:
        store.append_batch(refs, T0 + batch * 10_000, np.full(SERIES, float(batch)))
        store.flush()
        if batch % 50 == 0:
            clock.advance(60)
            store.maintain()
        print(batch, flush=True)
        batch += 1


if __name__ == "__main__":
    main()
