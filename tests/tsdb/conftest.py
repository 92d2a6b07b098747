from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

START = 1_700_000_000.0


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=START)


@pytest.fixture
def open_store(tmp_path: Path, clock: VirtualClock) -> Iterator[Callable[..., Store]]:
    """Opens stores in a temporary data directory; closes them all at the end."""
    opened: list[Store] = []

    def _open(**settings: object) -> Store:
        store = Store(StoreSettings(data_dir=tmp_path / "data", **settings), clock)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()
