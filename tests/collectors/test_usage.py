from __future__ import annotations

import gc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.usage import (
    CpuPoint,
    LabelKeys,
    RateTracker,
    cpu_rate,
    decode_resource,
    decode_resource_metrics,
    decode_resource_text,
)
from tests.support.external import require_data
from tests.support.payloads import kubelet_resource_metrics
from tsdb.exposition import ExpositionError, parse_exposition

METRICS_SERVER_FIXTURE = "k8s/metrics_resource_metrics-server_decode_test.prom"


def test_decodes_the_metrics_server_fixture_as_metrics_server_does() -> None:
    text = require_data(METRICS_SERVER_FIXTURE).read_text()
    got = decode_resource_metrics(parse_exposition(text), scrape_time_ms=1_633_253_900_000)
    assert got.node.cpu is not None and round(got.node.cpu[0] * 1e9) == 357_354_910_000
    assert got.node.cpu[1] == 1_633_253_809_720
    assert got.node.memory_bytes == 1_616_273_408
    key = ("kube-system", "coredns-558bd4d5db-4dpjz", "coredns")
    container = got.containers[key]
    assert container.cpu is not None
    assert round(container.cpu[0] * 1e9) == 4_710_169_000
    assert container.cpu[2] == 1_633_252_712  # 2021-10-03T09:18:32Z
    assert container.memory_bytes == 12_533_760
    pod = got.pods[("kube-system", "coredns-558bd4d5db-4dpjz")]
    assert pod.memory_bytes == 12_627_968
    assert got.rejected == {}


def test_bad_values_are_rejected_not_stored() -> None:
    text = (
        "node_cpu_usage_seconds_total NaN 1000\n"
        "node_memory_working_set_bytes -5 1000\n"
        'container_cpu_usage_seconds_total{namespace="a",pod="b"} 1 1000\n'
        'container_memory_working_set_bytes{namespace="a",pod="b",container="c"} +Inf 1000\n'
    )
    got = decode_resource_metrics(parse_exposition(text), 2000)
    assert got.node.cpu is None and got.node.memory_bytes is None
    assert got.containers == {}
    assert got.rejected == {"invalid_value": 3, "missing_labels": 1}


def test_samples_without_timestamp_take_the_scrape_time() -> None:
    got = decode_resource_metrics(parse_exposition("node_cpu_usage_seconds_total 2\n"), 5000)
    assert got.node.cpu == (2.0, 5000, None)


@pytest.mark.parametrize(
    ("prev", "last", "expected"),
    [
        ((10, 0, -100), (13, 15_000, -100), 0.2),
        # A counter going down is a reset: no rate.
        ((10, 0, -100), (9, 15_000, -100), None),
        # The same point twice (kubelet cache): no rate.
        ((10, 15_000, -100), (10, 15_000, -100), None),
        # Restarted 20 s before the scrape, within one resolution: start is the first point.
        ((10, 0, -100), (4, 60_000, 40), 0.2),
        # Restarted 5 s ago: too short a life for an honest rate.
        ((10, 0, -100), (1, 60_000, 55), None),
        # First sight of a container that started 20 s ago.
        (None, (2, 20_000, 0), 0.1),
        # First sight of an old container: wait for a second point.
        (None, (500, 1_000_000, 0), None),
    ],
)
def test_cpu_rate(prev: CpuPoint | None, last: CpuPoint, expected: float | None) -> None:
    rate = cpu_rate(prev, last, resolution_s=30)
    assert rate == pytest.approx(expected) if expected is not None else rate is None


def test_tracker_keeps_the_older_point_when_the_new_one_is_not_newer() -> None:
    tracker = RateTracker(resolution_s=30)
    assert tracker.update("c", (10, 0, 0)) is None
    assert tracker.update("c", (13, 15_000, 0)) == pytest.approx(0.2)
    assert tracker.update("c", (13, 15_000, 0)) is None
    assert tracker.update("c", (16, 30_000, 0)) == pytest.approx(0.2)
    tracker.forget({"c"})
    assert tracker.keys() == set()


def _full(text: str) -> object:
    try:
        return decode_resource_metrics(parse_exposition(text), 1_700_000_001_000)
    except ExpositionError:
        return "error"


def test_fast_decode_takes_kubelet_responses_and_agrees_with_the_full_path() -> None:
    keys: LabelKeys = {}
    body = kubelet_resource_metrics()
    fast = decode_resource_text(body, 1_700_000_001_000, keys)
    assert fast is not None and fast == _full(body)
    assert fast.containers[("shop", "web-1", "app")].cpu == (11.5, 1_700_000_000_123, 1.6999e9)
    assert fast.pods[("shop", "web-2")].cpu == (12.5, 1_700_000_001_000, None)
    # The parsed label texts are kept for the next scrape of the node.
    assert keys['container="app",namespace="shop",pod="web-0"'] == ("shop", "web-0", "app")
    assert decode_resource_text(body, 1_700_000_001_000, keys) == fast


def test_fast_decode_of_a_real_response_agrees_with_the_full_path() -> None:
    fixture = require_data(METRICS_SERVER_FIXTURE).read_text()
    assert decode_resource_text(fixture, 1_700_000_001_000, {}) in (None, _full(fixture))


@pytest.mark.parametrize(
    "text",
    [
        "node_cpu_usage_seconds_total NaN 1000\n",
        "node_cpu_usage_seconds_total -1 1000\n",
        "node_cpu_usage_seconds_total 1e999 1000\n",
        "node_cpu_usage_seconds_total 1.2.3 1000\n",
        "node_cpu_usage_seconds_total 1\nnode_cpu_usage_seconds_total 2\n",
        'pod_cpu_usage_seconds_total{namespace="a"} 1\n',
        'pod_cpu_usage_seconds_total{namespace="a",pod="b",pod="c"} 1\n',
        'container_cpu_usage_seconds_total{namespace="a",pod="b"} 1\n',
        "# TYPE x counter\n# TYPE x gauge\nx 1\n",
        "node_cpu_usage_seconds_total 1\n\nnode_memory_working_set_bytes 2\n",
        'node_cpu_usage_seconds_total{a="b"} 1\n',
    ],
)
def test_anything_unusual_takes_the_full_path(text: str) -> None:
    assert decode_resource_text(text, 0, {}) is None


BODY = kubelet_resource_metrics(2)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(BODY) - 1), st.text(max_size=4), st.integers(0, 6))
def test_garbled_responses_never_decode_differently_on_the_fast_path(
    at: int, insert: str, cut: int
) -> None:
    text = BODY[:at] + insert + BODY[at + cut :]
    fast = decode_resource_text(text, 1_700_000_001_000, {})
    if fast is not None:
        assert fast == _full(text)


def test_the_points_kept_for_rates_are_left_to_reference_counting() -> None:
    # One point per container outlives each cycle: full collections must not walk them.
    fast = decode_resource_text(kubelet_resource_metrics(), 1_700_000_001_000, {})
    assert fast is not None
    point = fast.containers[("shop", "web-1", "app")].cpu
    assert point is not None
    RateTracker(30).update("c", point)
    gc.collect()
    assert not gc.is_tracked(point)


def _with_numbers(text: str, values: list[str], stamps: list[str]) -> str:
    """``text`` with the value and timestamp of every sample line replaced, in turn, by one
    of ``values`` and ``stamps`` ("": no timestamp)."""
    out = []
    for i, line in enumerate(text.splitlines()):
        if line.startswith("#"):
            out.append(line)
            continue
        head = line.split(" ")[0]
        stamp = stamps[i % len(stamps)]
        out.append(f"{head} {values[i % len(values)]}" + (f" {stamp}" if stamp else ""))
    return "\n".join(out) + "\n"


def _resource_texts() -> list[str]:
    return [
        kubelet_resource_metrics(),
        require_data(METRICS_SERVER_FIXTURE).read_text(),
        kubelet_resource_metrics(30),
    ]


_NUMBERS = st.sampled_from(["0", "1", "10.5", "2.5e+07", "1.616273408e+09", "7E-3", "1e999"])
_STAMPS = st.sampled_from(["", "0", "1700000000123", "999999999999999999"])


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2),
    st.lists(_NUMBERS, min_size=1, max_size=7),
    st.lists(_STAMPS, min_size=1, max_size=3),
)
def test_a_response_read_by_its_layout_reads_as_line_by_line(
    which: int, values: list[str], stamps: list[str]
) -> None:
    text = _resource_texts()[which]
    keys: LabelKeys = {}
    first, layout = decode_resource(text, 1_700_000_001_000, keys, None)
    assert first == decode_resource_text(text, 1_700_000_001_000, {})
    assert layout is not None  # kubelet responses have one
    changed = _with_numbers(text, values, stamps)
    read, kept = decode_resource(changed, 1_700_000_002_000, keys, layout)
    assert read == decode_resource_text(changed, 1_700_000_002_000, {})
    if read is not None and "1e999" not in values:
        assert kept is layout  # read by position, the layout kept


def test_a_layout_is_not_learned_from_a_comment_that_ends_as_a_sample() -> None:
    text = "# HELP node_cpu_usage_seconds_total CPU 5 17\n" + kubelet_resource_metrics()
    read, layout = decode_resource(text, 0, {}, None)
    assert read is not None and layout is None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('pod="web-1"', 'pod="web-9"'),  # another pod, its text as long
        ("pod_cpu_usage_seconds_total", "pod_cpu_usage_seconds_totaL"),  # another family
        (" 1700000000123\n", "\n"),  # a timestamp gone: the scrape's time
    ],
)
def test_a_response_laid_out_otherwise_is_read_line_by_line(old: str, new: str) -> None:
    text = kubelet_resource_metrics()
    keys: LabelKeys = {}
    _, layout = decode_resource(text, 1_700_000_001_000, keys, None)
    changed = text.replace(old, new, 1)
    assert changed != text
    read, _ = decode_resource(changed, 1_700_000_002_000, keys, layout)
    assert read == decode_resource_text(changed, 1_700_000_002_000, {})


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(BODY) - 1), st.text(max_size=4), st.integers(0, 6))
def test_garbled_responses_never_read_differently_by_a_layout(
    at: int, insert: str, cut: int
) -> None:
    keys: LabelKeys = {}
    _, layout = decode_resource(BODY, 1_700_000_001_000, keys, None)
    assert layout is not None
    text = BODY[:at] + insert + BODY[at + cut :]
    read, _ = decode_resource(text, 1_700_000_002_000, keys, layout)
    assert read == decode_resource_text(text, 1_700_000_002_000, {})
