"""Fixtures of the PromQL tests: in-memory stores and the shared test material."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "promql"

Samples = Iterable[tuple[Mapping[str, str], int, float]]


def require(path: Path) -> Path:
    """The path, or a clear failure naming what is missing."""
    if not path.exists():
        raise FileNotFoundError(
            f"PromQL test material not found at {path}; it is expected in shared/data/promql "
            "next to the repository"
        )
    return path


@pytest.fixture
def memory_store() -> Iterator[Callable[[Samples], Store]]:
    """Build in-memory stores holding ``(labels, ms, value)`` samples."""
    made: list[Store] = []

    def build(samples: Samples = ()) -> Store:
        store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
        for labels, ts, value in samples:
            store.append(labels, ts, value)
        made.append(store)
        return store

    yield build
    for store in made:
        store.close()


@pytest.fixture
def rules_dir() -> Path:
    """The shared rule files (kube-prometheus, kubernetes-mixin)."""
    return require(DATA / "rules")
