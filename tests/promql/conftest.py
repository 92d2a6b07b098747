"""Fixtures of the PromQL tests: in-memory stores and the community rule files."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from runtime.clock import VirtualClock
from tests.support.external import require_data
from tsdb import Store, StoreSettings

Samples = Iterable[tuple[Mapping[str, str], int, float]]


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
    """The community rule files (kube-prometheus, kubernetes-mixin)."""
    return require_data("promql/rules")
