"""The exposition parser against prometheus-client's, on a payload written here and on real
kubelet, cAdvisor and kube-state-metrics output."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tests.support.external import require_data
from tests.support.payloads import kubelet_resource_metrics
from tsdb.exposition import ExpositionError, parse_exposition

KUBELET = kubelet_resource_metrics()
FIXTURES = [
    "metrics_resource_metrics-server_decode_test.prom",
    "nri-kubernetes-1_35/kubelet_metrics_cadvisor",
    "nri-kubernetes-1_35/ksm_metrics",
    "cadvisor_prometheus_metrics_google-cadvisor.prom",
]


def _reference(text: str) -> set[tuple[object, ...]]:
    """prometheus-client's reading, normalised: empty labels dropped, counter names as sent."""
    out = set()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = s.name
            if family.type == "counter" and name.endswith("_total") and f"{name}" not in text:
                name = name[: -len("_total")]
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if v))
            value = "nan" if math.isnan(s.value) else s.value
            ts = round(s.timestamp * 1000) if s.timestamp is not None else None
            out.add((name, labels, value, ts))
    return out


def _ours(text: str) -> set[tuple[object, ...]]:
    return {
        (s.name, s.labels, "nan" if math.isnan(s.value) else s.value, s.timestamp_ms)
        for s in parse_exposition(text).samples
    }


def test_agrees_with_prometheus_client_on_a_kubelet_response() -> None:
    ours = _ours(KUBELET)
    assert len(ours) == 18
    assert ours == _reference(KUBELET)
    assert parse_exposition(KUBELET).types["container_cpu_usage_seconds_total"] == "counter"


@pytest.mark.parametrize("fixture", FIXTURES)
def test_agrees_with_prometheus_client_on_real_output(fixture: str) -> None:
    text = require_data(f"k8s/{fixture}").read_text()
    assert _ours(text) == _reference(text)


def test_kubelet_resource_values_match_provenance() -> None:
    parsed = parse_exposition(
        require_data("k8s/metrics_resource_metrics-server_decode_test.prom").read_text()
    )
    by_name = {(s.name, dict(s.labels).get("container")): s for s in parsed.samples}
    node_cpu = by_name[("node_cpu_usage_seconds_total", None)]
    assert round(node_cpu.value * 1e9) == 357_354_910_000
    assert node_cpu.timestamp_ms == 1633253809720
    assert by_name[("node_memory_working_set_bytes", None)].value == 1_616_273_408
    assert (
        round(by_name[("container_cpu_usage_seconds_total", "coredns")].value * 1e9)
        == 4_710_169_000
    )
    assert by_name[("container_memory_working_set_bytes", "coredns")].value == 12_533_760
    assert (
        by_name[("container_start_time_seconds", "coredns")].value == 1633252712
    )  # 2021-10-03T09:18:32Z
    assert parsed.types["container_cpu_usage_seconds_total"] == "counter"


def test_cadvisor_fixture_counts() -> None:
    parsed = parse_exposition(
        require_data("k8s/nri-kubernetes-1_35/kubelet_metrics_cadvisor").read_text()
    )
    cpu = [s for s in parsed.samples if s.name == "container_cpu_usage_seconds_total"]
    assert len(cpu) == 58
    assert sum(1 for s in cpu if "container" not in dict(s.labels)) == 41
    assert len(parsed.types) == 78


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('metric{a="1" 1\n', "line 1: not a sample"),
        ("ok 1\nmetric{a=1} 2\n", "line 2: invalid label set"),
        ("metric 1_000\n", "line 1: invalid value '1_000'"),
        ("metric infinity\n", "line 1: invalid value 'infinity'"),
        ('metric{a="1",a="2"} 1\n', "line 1: duplicate label name"),
        ("# TYPE m counter\n# TYPE m gauge\nm 1\n", "line 2: second TYPE line for m"),
        ("# TYPE m flux\n", "line 1: invalid TYPE line"),
        ("metric 1 2 3\n", "line 1: not a sample"),
        ("1metric 1\n", "line 1: not a sample"),
    ],
)
def test_malformed_lines_fail_with_line_and_reason(text: str, reason: str) -> None:
    with pytest.raises(ExpositionError) as err:
        parse_exposition(text)
    assert str(err.value).startswith(reason)


def test_special_values_escapes_and_duplicates() -> None:
    text = (
        "# HELP m help with \\n escapes\n"
        'm{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb",empty=""} +Inf 1000\n'
        "n NaN\n"
        "n NaN\n"
        "o -Inf\n"
        "p 1.5e+09 -5\n"
    )
    parsed = parse_exposition(text)
    m, n, o, p = parsed.samples
    assert m.labels == (("nl", "a\nb"), ("path", "C:\\dir"), ("quote", 'say "hi"'))
    assert m.value == math.inf and m.timestamp_ms == 1000
    assert math.isnan(n.value) and o.value == -math.inf
    assert p.value == 1.5e9 and p.timestamp_ms == -5
    assert parsed.duplicates == 1


def test_sample_cap() -> None:
    with pytest.raises(ExpositionError, match="more than 2 samples"):
        parse_exposition("a 1\nb 2\nc 3\n", max_samples=2)


names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,15}", fullmatch=True)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True).filter(
    lambda s: s != "__name__"
)
label_values = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
)
values = st.floats(allow_nan=True, allow_infinity=True)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _render(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            names,
            st.dictionaries(label_names, label_values, max_size=4),
            values,
            st.none() | st.integers(-(2**53), 2**53),
        ),
        max_size=20,
    )
)
def test_round_trip_of_rendered_samples(
    samples: list[tuple[str, dict[str, str], float, int | None]],
) -> None:
    lines = []
    expected = {}
    for name, labels, value, ts in samples:
        body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{body}}} {_render(value)}" + (f" {ts}" if ts is not None else ""))
        key = (name, tuple(sorted(labels.items())))
        expected.setdefault(key, ("nan" if math.isnan(value) else value, ts))
    got = {
        (s.name, s.labels): ("nan" if math.isnan(s.value) else s.value, s.timestamp_ms)
        for s in parse_exposition("\n".join(lines)).samples
    }
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(KUBELET) - 1), st.text(max_size=4), st.integers(0, 6))
def test_garbled_input_fails_cleanly_or_means_what_the_reference_reads(
    at: int, insert: str, cut: int
) -> None:
    text = KUBELET[:at] + insert + KUBELET[at + cut :]
    try:
        ours = _ours(text)
    except ExpositionError:
        return
    try:
        reference = _reference(text)
    except Exception:
        # We accepted text the reference rejects: every sample must still be one we can
        # account for, i.e. present verbatim in the text.
        for name, _labels, _value, _ts in ours:
            assert str(name) in text
        return
    assert ours == reference
