"""The pure parts of the back-fill: spans the store lacks, chunks, and the PromQL mapping."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from autoscaler.backfill.mapping import BackfillTarget, pod_pattern, target_of
from autoscaler.backfill.plan import chunks, missing_spans
from autoscaler.backfill.settings import HistorySettings
from autoscaler.resource.model import PredictiveAutoscalerSpec
from runtime import names


def ts(*seconds: float) -> np.ndarray:
    return np.array([round(s * 1000) for s in seconds], np.int64)


def test_an_empty_store_misses_the_whole_window() -> None:
    assert missing_spans(ts(), 0, 10_000, 1_000) == [(0, 10_001)]


def test_spans_lie_between_samples_and_never_on_one() -> None:
    stamps = ts(5, 6, 7, 20, 21)
    spans = missing_spans(stamps, 0, 40_000, 2_000)
    assert spans == [(0, 5_000), (7_001, 20_000), (21_001, 40_001)]
    for lo, hi in spans:
        assert not ((stamps >= lo) & (stamps < hi)).any()


def test_samples_closer_than_the_gap_are_covered() -> None:
    # Samples every minute (a downsampled tier) with a gap bound of five: nothing missing.
    assert missing_spans(ts(*range(0, 3600, 60)), 0, 3540_000, 300_000) == []


def test_chunks_cover_every_grid_point_once_newest_first() -> None:
    spans = [(0, 100_000), (130_001, 200_001)]
    got = chunks(spans, 10_000, 4)
    assert got[0][1] == 200_000 and all(a[1] > b[1] for a, b in itertools.pairwise(got))
    points = sorted(t for a, b in got for t in range(a, b + 1, 10_000))
    assert points == [*range(0, 100_000, 10_000), *range(140_000, 200_001, 10_000)]
    assert all((b - a) // 10_000 + 1 <= 4 for a, b in got)


def test_a_span_without_a_grid_point_asks_nothing() -> None:
    assert chunks([(10_001, 19_999)], 10_000, 5) == []


@pytest.mark.parametrize(
    ("kind", "name", "pod", "matches"),
    [
        ("Deployment", "web", "web-5d9f8b7c6d-x7k2p", True),
        ("Deployment", "web", "web-api-5d9f8b7c6d-x7k2p", False),
        ("Deployment", "web", "web-backup-x7k2p", False),  # a Job's pod: vowels
        ("Deployment", "web", "web-0", False),
        ("StatefulSet", "db", "db-12", True),
        ("StatefulSet", "db", "db-replica-0", False),
        ("Deployment", "a.b", "axb-5d9f8b7c6d-x7k2p", False),
    ],
)
def test_pod_names_of_a_workload(kind: str, name: str, pod: str, matches: bool) -> None:
    assert bool(re.fullmatch(pod_pattern(kind, name), pod)) is matches


def _spec(metric: dict[str, object] | None) -> PredictiveAutoscalerSpec:
    horizontal = {"minReplicas": 1, "maxReplicas": 3}
    if metric is not None:
        horizontal["metric"] = metric
    return PredictiveAutoscalerSpec.model_validate(
        {"targetRef": {"kind": "Deployment", "name": "web"}, "horizontal": horizontal}
    )


def test_the_target_is_the_series_the_load_query_reads() -> None:
    cpu = target_of("shop", _spec({"type": "CPU", "targetUtilization": 70}))
    memory = target_of("shop", _spec({"type": "Memory", "targetUtilization": 70}))
    custom = target_of("shop", _spec({"type": "Query", "query": "sum(x)", "targetPerReplica": 2}))
    assert cpu == BackfillTarget("shop", "Deployment", "web", "cpu")
    assert cpu.labels()["__name__"] == names.WORKLOAD_CPU_CORES
    assert memory is not None and memory.labels()["__name__"] == names.WORKLOAD_MEMORY
    assert custom is None
    assert cpu.query('job="kubelet"', 60) == (
        'sum(irate(container_cpu_usage_seconds_total{namespace="shop",'
        'pod=~"web-[bcdfghjklmnpqrstvwxz2456789]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}",'
        'container!="",container!="POD",job="kubelet"}[60s]))'
    )
    assert memory.query().startswith("sum(container_memory_working_set_bytes{")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"prometheus_url": "http://user:pw@prom:9090"}, "credentials in the URL"),
        ({"prometheus_url": "prom:9090"}, "http:// or https://"),
        ({"extra_matchers": 'job="a"} or up{x="y"'}, "not PromQL label matchers"),
        ({"retry_initial_seconds": 10, "retry_max_seconds": 5}, "retry_max_seconds"),
    ],
)
def test_settings_refuse_what_would_leak_or_mislead(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        HistorySettings.model_validate(values)
