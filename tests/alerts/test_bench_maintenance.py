"""The benchmarks' rule rounds read blocks as the service's store keeps them.

The service's flusher maintains the store every minute (``tsdb.MAINTAIN_EVERY_SECONDS``),
merging the blocks each scrape seals; at 1,000 nodes a scrape seals one. ``bench.promql``
maintained its store once, after the history, so its steady rounds read a window of ten
unmerged blocks where the service reads a few.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.promql import SCRAPE_MS, Cluster, ServiceRules
from tests.support.external import require_data
from tsdb import MAINTAIN_EVERY_SECONDS, Store


def test_the_benchmark_store_is_maintained_every_minute_of_scrapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = require_data("promql/rules/kube-prometheus")
    maintained: list[int] = []
    maintain = Store.maintain

    def counted(store: Store) -> None:
        maintained.append(len(maintained))
        maintain(store)

    monkeypatch.setattr(Store, "maintain", counted)
    every = int(MAINTAIN_EVERY_SECONDS * 1000)
    service = ServiceRules(rules, Cluster(2, 4), tmp_path / "state", scrapes=9)
    try:
        # Eight scrape intervals after the first scrape: four minutes.
        assert len(maintained) == 8 * SCRAPE_MS // every
        first = service.scrapes_done
        service.next_full_round()
        assert len(maintained) == (service.scrapes_done - 1) * SCRAPE_MS // every
        assert service.scrapes_done > first
    finally:
        service.store.close()
