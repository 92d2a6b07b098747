"""The synthetic cluster of the PromQL and rule benchmarks: counters grow, gauges hold
their level (they grew like counters while their marker fell among the buckets')."""

from __future__ import annotations

from bench.promql import T0_MS, Cluster, Scrapes, load_rules
from runtime.clock import VirtualClock
from tests.support.external import require_data
from tsdb import Store, StoreSettings
from tsdb.labels import name_is


def _moved(store: Store, name: str) -> list[float]:
    """Per series of ``name``: its last sample less the one before."""
    series = store.select([name_is(name)], 0, 2**62)
    assert series, name
    return [float(s.values[-1] - s.values[-2]) for s in series]


def test_gauges_hold_their_level_and_counters_grow() -> None:
    rules = load_rules(require_data("promql/rules/kube-prometheus"))
    store = Store(StoreSettings(), VirtualClock(T0_MS / 1000), persistent=False)
    try:
        scrapes = Scrapes(store, rules, Cluster(1, 4))
        scrapes.append(0)
        scrapes.append(1)
        assert set(_moved(store, "kubelet_certificate_manager_client_ttl_seconds")) == {0.0}
        assert min(_moved(store, "container_cpu_usage_seconds_total")) > 0
        assert min(_moved(store, "kubelet_pleg_relist_duration_seconds_bucket")) > 0
    finally:
        store.close()
