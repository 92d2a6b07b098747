"""The bulk rendering of ``/metrics`` gives the bytes prometheus-client gives."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runtime.families import FamiliesCollector, Family, Kind, exposition, render_families


class Reference(Collector):
    """Families as prometheus-client metric objects, one sample at a time."""

    def __init__(self, families: Sequence[Family]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            names = sorted({k for labels, _ in family.samples for k in labels})
            metric: GaugeMetricFamily | CounterMetricFamily
            if family.kind == "counter":
                metric = CounterMetricFamily(
                    family.name.removesuffix("_total"), family.help, labels=names
                )
            else:
                metric = GaugeMetricFamily(family.name, family.help, labels=names)
            for labels, value in family.samples:
                metric.add_metric([labels.get(n, "") for n in names], value)
            yield metric


def _reference(families: Sequence[Family]) -> bytes:
    registry = CollectorRegistry()
    registry.register(Reference(families))
    return generate_latest(registry)


def _families() -> list[Family]:
    usage = Family("foresight_pod_cpu_usage_cores", "gauge", "CPU used by the pod, in cores.")
    for value in (0.0, -0.0, 1.0, 0.25, 1e-7, 999_999.5, 1e6, 123_456_789.0, 1e22, 5):
        usage.add(value, namespace="shop", pod=f"web-{value}", node="n1")
    usage.add(math.nan, namespace="a", pod="b")  # a missing label is exported empty
    usage.add(math.inf, namespace='quo"te', pod="back\\slash", node="new\nline")
    usage.add(-math.inf, namespace="ünï", pod="x", node="y")
    restarts = Family(
        "foresight_container_restarts_total", "counter", "Restarts.\nSince \\ creation."
    )
    restarts.add(3, namespace="shop", pod="web", container="app")
    odd_counter = Family("foresight_decisions", "counter", "A counter named without _total.")
    odd_counter.add(2, direction="up")
    bare = Family("foresight_store_series", "gauge", "Series in the store.")
    bare.add(42)
    empty = Family("foresight_hpa_info", "gauge", "Nothing to say.")
    # Families may share label dicts (a pod's CPU and memory do).
    memory = Family("foresight_pod_memory_working_set_bytes", "gauge", "Memory of the pod.")
    memory.samples = [(labels, 2.5e8 + i) for i, (labels, _) in enumerate(usage.samples)]
    return [usage, restarts, odd_counter, bare, empty, memory]


def test_bulk_text_equals_prometheus_client_bytes() -> None:
    families = _families()
    expected = _reference(families)
    assert render_families(families).encode() == expected
    registry = CollectorRegistry()
    registry.register(FamiliesCollector(lambda: families))
    assert exposition(registry) == expected
    assert generate_latest(registry) == expected


def test_other_collectors_in_the_registry_keep_their_place() -> None:
    families = _families()
    registry = CollectorRegistry()
    before = Gauge("foresight_build_info", "Build.", registry=registry)
    before.set(1)
    registry.register(FamiliesCollector(lambda: families))
    Gauge("foresight_up", "Up.", registry=registry).set(1)
    assert exposition(registry) == generate_latest(registry)


def test_sample_values_are_readable_through_the_registry() -> None:
    families = _families()
    registry = CollectorRegistry()
    registry.register(FamiliesCollector(lambda: families))
    labels = {"namespace": "shop", "pod": "web", "container": "app"}
    assert registry.get_sample_value("foresight_container_restarts_total", labels) == 3
    assert registry.get_sample_value("foresight_decisions_total", {"direction": "up"}) == 2
    assert registry.get_sample_value("foresight_store_series") == 42


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_value = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**20), 10**20)


@given(
    kind=st.sampled_from(["gauge", "counter"]),
    samples=st.lists(
        st.tuples(st.dictionaries(st.sampled_from(["a", "b", "le", "zz"]), _text), _value),
        max_size=6,
    ),
)
def test_bulk_text_equals_prometheus_client_on_any_family(
    kind: Kind, samples: list[tuple[dict[str, str], float]]
) -> None:
    family = Family("foresight_x_total" if kind == "counter" else "foresight_x", kind, "Help.")
    for labels, value in samples:
        family.add(value, **labels)
    assert render_families([family]).encode() == _reference([family])
