"""cAdvisor's families cut out of real kubelet output and read to the values prometheus-client
reads, the default selection (rows, labels) as kube-prometheus keeps them, and malformed
kept text as an error."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from collectors.cadvisor import (
    RowCache,
    Selection,
    TargetLabels,
    kept_blocks,
    read_cadvisor,
    series_labels,
)
from collectors.settings import CollectorSettings
from runtime import names_kubelet
from tests.support.external import require_data
from tsdb.exposition import ExpositionError

REAL = [
    "nri-kubernetes-1_35/kubelet_metrics_cadvisor",
    "cadvisor_prometheus_metrics_google-cadvisor.prom",
]
DEFAULTS = CollectorSettings()
SELECTION = Selection.of(
    DEFAULTS.cadvisor_metrics, DEFAULTS.cadvisor_drop_labels, DEFAULTS.cadvisor_drop_interfaces
)
TARGET = TargetLabels("node-1", "10.0.0.1:10250")


def _reference(
    text: str, keep: frozenset[str]
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """prometheus-client's reading of the kept families: empty labels dropped, as stored."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = _as_sent(s.name, family.type, text)
            if name in keep:
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if v))
                out[(name, labels)] = s.value
    return out


def _as_sent(name: str, kind: str, text: str) -> str:
    """prometheus-client adds ``_total`` to counters sent without it (cAdvisor's failcnt)."""
    if kind == "counter" and name.endswith("_total") and f"\n{name}" not in text:
        return name.removesuffix("_total")
    return name


Row = tuple[str, tuple[tuple[str, str], ...]]
K = TypeVar("K")


class Node:
    """What a collector keeps of one kubelet between scrapes: row texts and series ids."""

    def __init__(self) -> None:
        self.cache = RowCache()
        self.rows: list[Row] = []

    def resolve(self, rows: Sequence[Row]) -> list[int]:
        first = len(self.rows)
        self.rows += rows
        return list(range(first, len(self.rows)))


def _ours(text: str, keep: frozenset[str], node: Node | None = None) -> dict[Row, float]:
    """What :func:`read_cadvisor` reads, each row by its name and labels."""
    node = node or Node()
    rows = node.rows
    refs, values = read_cadvisor(text, keep, node.cache, node.resolve)
    out: dict[Row, float] = {}
    for ref, value in zip(refs, values, strict=True):
        out.setdefault(rows[ref], value)
    return out


def _same(a: dict[K, float], b: dict[K, float]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        # prometheus-client keeps an integer's text as an int (2**63 - 1, say); a sample's
        # value is the float64 nearest to it.
        expected = float(b[key])
        assert value == expected or (math.isnan(value) and math.isnan(expected)), key


@pytest.mark.parametrize("fixture", REAL)
def test_kept_families_read_as_prometheus_client_reads_them(fixture: str) -> None:
    text = require_data(f"k8s/{fixture}").read_text()
    keep = SELECTION.metrics
    node = Node()
    ours = _ours(text, keep, node)
    assert len(ours) > (500 if "kubelet" in fixture else 20)
    _same(ours, _reference(text, keep))
    # The next scrape reads the remembered rows by their text: the same values.
    seen = len(node.rows)
    assert len(node.cache.hashes) > len(ours)
    _same(_ours(text, keep, node), ours)
    assert len(node.rows) == seen  # nothing parsed again
    # A pod gone moves the rows after it: they are found by their hash.
    gone = 'pod="storage-provisioner"' if "kubelet" in fixture else 'cpu="cpu00"'
    shorter = "".join(line for line in text.splitlines(True) if gone not in line)
    _same(_ours(shorter, keep, node), _reference(shorter, keep))
    assert len(node.rows) == seen


@pytest.mark.parametrize("fixture", REAL)
def test_every_family_reads_as_prometheus_client_reads_it(fixture: str) -> None:
    text = require_data(f"k8s/{fixture}").read_text()
    every = frozenset(
        _as_sent(s.name, f.type, text)
        for f in text_string_to_metric_families(text)
        for s in f.samples
    )
    _same(_ours(text, every), _reference(text, every))


# A sample line's value and timestamp, as a kubelet writes them.
_VALUE_AND_STAMP = re.compile(r"^([^#\n][^\n]*\}) (\S+) (\S+)$", re.M)
# Values as Go's strconv writes them (%g-like, exponents, integers), and the ones Prometheus
# spells out.
_VALUES = st.one_of(
    st.integers(0, 2**63).map(str),
    st.floats(0, 1e30).map(repr),
    st.floats(0, 1e30).map(lambda v: f"{v:.6e}"),
    st.sampled_from(["NaN", "+Inf", "-Inf", "0", "-0", "1e+06", ".5", "5."]),
)
_STAMPS = st.one_of(st.integers(0, 10**13), st.integers(-(2**63), 2**63 - 1)).map(str)


def _rewritten(text: str, values: list[str], stamps: list[str]) -> str:
    """``text`` with the value and timestamp of each sample line replaced, in order."""
    at = iter(range(10**9))

    def swap(m: re.Match[str]) -> str:
        i = next(at)
        return f"{m.group(1)} {values[i % len(values)]} {stamps[i % len(stamps)]}"

    return _VALUE_AND_STAMP.sub(swap, text)


@functools.cache
def _kept_text() -> tuple[str, dict[Row, float]]:
    """The kept families of a real kubelet's response, and prometheus-client's reading."""
    text = require_data("k8s/nri-kubernetes-1_35/kubelet_metrics_cadvisor").read_text()
    kept = kept_blocks(text, SELECTION.metrics)
    assert kept is not None
    return kept, _reference(kept, SELECTION.metrics)


@settings(max_examples=10, deadline=None)
@given(st.lists(_VALUES, min_size=1, max_size=40), st.lists(_STAMPS, min_size=1, max_size=5))
def test_values_read_by_position_are_prometheus_clients(
    values: list[str], stamps: list[str]
) -> None:
    text, reference = _kept_text()
    keep = SELECTION.metrics
    node = Node()
    _ours(text, keep, node)
    assert node.cache.layout is not None  # the next scrape reads values by position
    seen = len(node.rows)
    learned = node.cache.hashes
    changed = _rewritten(text, values, stamps)
    _same(_ours(changed, keep, node), _reference(changed, keep))
    assert len(node.rows) == seen  # no row parsed again, whatever took the values
    plain = all(re.fullmatch(r"[0-9.e+-]+", v) for v in values) and all(
        len(s.lstrip("-")) <= 18 for s in stamps
    )
    assert (node.cache.hashes is learned) == plain  # by position, or line by line
    # And back: a layout read line by line (NaN, a long timestamp) is learned again.
    _same(_ours(text, keep, node), reference)
    assert node.cache.layout is not None


def _families(text: str) -> list[str]:
    """The family blocks of a kubelet's response, each from its HELP line."""
    return ["# HELP " + block for block in text.removeprefix("# HELP ").split("\n# HELP ")]


@functools.cache
def _kubelet_blocks() -> list[str]:
    text = require_data("k8s/nri-kubernetes-1_35/kubelet_metrics_cadvisor").read_text()
    return _families(text.rstrip("\n"))


@functools.cache
def _kept_reference(kept: str) -> dict[Row, float]:
    return _reference(kept, SELECTION.metrics)


_EDITS = st.lists(
    st.tuples(st.integers(0, 200), st.sampled_from(["drop", "pad", "shrink"]), st.integers(1, 400)),
    max_size=6,
)


def _edited(blocks: list[str], edits: list[tuple[int, str, int]]) -> str:
    """The response with some family blocks dropped, padded with comment lines (moving every
    block after it) or cut short."""
    out = list(blocks)
    for at, edit, size in edits:
        i = at % len(out)
        if edit == "drop":
            out[i] = ""
        elif edit == "pad":
            if out[i]:  # a dropped block stays dropped: no response opens with a comment
                out[i] += "".join(f"\n# note {n}" for n in range(size))
        elif out[i]:
            lines = out[i].split("\n")
            out[i] = "\n".join(lines[: max(3, len(lines) - size)])
    return "\n".join(b for b in out if b) + "\n"


@settings(max_examples=8, deadline=None)
@given(_EDITS, st.lists(_VALUES, min_size=1, max_size=10))
@example([(0, "drop", 1), (0, "pad", 1)], ["0"])
def test_kept_blocks_found_where_they_moved_or_appeared(
    edits: list[tuple[int, str, int]], values: list[str]
) -> None:
    kubelet_blocks = _kubelet_blocks()
    keep = SELECTION.metrics
    base = _edited(kubelet_blocks, [])
    edited = _rewritten(_edited(kubelet_blocks, edits), values, ["1700000000000"])
    expected = {}
    for text in (base, edited):
        kept = kept_blocks(text, keep)
        assert kept is not None
        expected[text] = _kept_reference(kept)
    # Learn from one text, read the other (blocks moved, gone, come back), and back again.
    for first, then in ((base, edited), (edited, base)):
        node = Node()
        for text in (first, then, first):
            _same(_ours(text, keep, node), expected[text])


def test_a_kept_family_that_appears_is_read() -> None:
    text = require_data("k8s/nri-kubernetes-1_35/kubelet_metrics_cadvisor").read_text()
    keep = SELECTION.metrics
    blocks = _families(text.rstrip("\n"))
    # Before any container had a CPU limit: no throttling families at all.
    unlimited = [b for b in blocks if "_cfs_" not in b.split("\n", 1)[0]]
    assert len(unlimited) == len(blocks) - 3
    node = Node()
    _ours("\n".join(unlimited) + "\n", keep, node)
    assert node.cache.plan is not None and len(node.cache.plan.absent) == 3
    read = _ours(text, keep, node)
    assert {name for name, _ in read} >= {
        names_kubelet.CFS_PERIODS,
        names_kubelet.CFS_THROTTLED_PERIODS,
        names_kubelet.CFS_THROTTLED_SECONDS,
    }
    _same(read, _reference(text, keep))


def test_families_out_of_order_or_split_are_read_all_the_same() -> None:
    text = require_data("k8s/nri-kubernetes-1_35/kubelet_metrics_cadvisor").read_text()
    keep = SELECTION.metrics
    blocks = _families(text.rstrip("\n"))
    shuffled = "\n".join(blocks[::-1]) + "\n"
    node = Node()
    _same(_ours(shuffled, keep, node), _reference(shuffled, keep))
    assert node.cache.plan is None  # blocks looked for by a full read every time
    _same(_ours(shuffled, keep, node), _reference(shuffled, keep))
    # A kept family written in two blocks, next to each other: read whole.
    [cpu] = [i for i, b in enumerate(blocks) if b.startswith(f"# HELP {names_kubelet.CPU_USAGE} ")]
    head, *rows = blocks[cpu].split("\n")
    rows = [r for r in rows if not r.startswith("#")]
    first = "\n".join([head, rows[0]])
    second = "\n".join([head, *rows[1:]])
    split = "\n".join([*blocks[:cpu], first, second, *blocks[cpu + 1 :]]) + "\n"
    assert kept_blocks(split, keep) is None
    node = Node()
    _ours(text, keep, node)
    assert node.cache.plan is not None
    _same(_ours(split, keep, node), _ours(split, keep))


def test_a_response_in_another_layout_is_parsed_whole_to_the_same_rows() -> None:
    text = require_data("k8s/nri-kubernetes-1_35/kubelet_metrics_cadvisor").read_text()
    # Without HELP and TYPE lines there are no blocks to cut: the whole text is parsed.
    bare = "\n".join(line for line in text.splitlines() if not line.startswith("#")) + "\n"
    assert kept_blocks(bare, SELECTION.metrics) is None
    _same(_ours(bare, SELECTION.metrics), _ours(text, SELECTION.metrics))


def test_malformed_kept_text_is_an_error_and_dropped_families_are_not_read() -> None:
    good = (
        "# HELP container_memory_rss RSS.\n# TYPE container_memory_rss gauge\n"
        'container_memory_rss{container="app",namespace="shop",pod="web-1"} 1024 1700000000000\n'
    )
    dropped = "# HELP container_tasks_state Tasks.\n# TYPE container_tasks_state gauge\n"
    keep = frozenset({"container_memory_rss"})
    read = _ours(dropped + "container_tasks_state{x=1 garbage\n" + good, keep)
    assert list(read.values()) == [1024.0]
    for garbled in (
        good.replace(" 1024 ", " 10x24 "),  # a bad value of a row seen before
        good.replace(" 1024 ", " 1.2.4 "),  # of the characters of a number, but not one
        good.replace(" 1024 ", " 1e "),
        good.replace(" 1024 ", " -nan "),
        good.replace(" 1024 ", " 1_024 "),
        good.replace(" 1024 1700000000000", ""),  # no value
        good.replace(" 1700000000000", " 17000x"),  # a bad timestamp
        good.replace(" 1700000000000", " 99999999999999999999"),  # past int64
        good.replace('pod="web-1"', 'pod="web-1'),  # a bad label set, never seen
        # Brace, value and timestamp gone: the text around the values joined is as before.
        good.replace("} 1024 1700000000000", ""),
        good.replace("# TYPE container_memory_rss gauge", "# TYPE container_memory_rss gaug"),
    ):
        warm = Node()
        _ours(good, keep, warm)  # has seen the good row's text before
        assert warm.cache.layout is not None
        for node in (Node(), warm):
            with pytest.raises(ExpositionError):
                _ours(garbled, keep, node)


def test_rows_and_labels_kept_as_kube_prometheus_keeps_them() -> None:
    text = require_data("k8s/nri-kubernetes-1_35/kubelet_metrics_cadvisor").read_text()
    stored = {}
    for name, labels in _ours(text, SELECTION.metrics):
        kept = series_labels(name, labels, SELECTION, TARGET)
        if kept is not None:
            stored[kept] = name
    by_name: dict[str, list[dict[str, str]]] = {}
    for labels, name in stored.items():
        by_name.setdefault(name, []).append(dict(labels))
    for name, series in by_name.items():
        for labels in series:
            assert labels["job"] == "kubelet" and labels["metrics_path"] == "/metrics/cadvisor"
            assert labels["node"] == "node-1" and labels["instance"] == "10.0.0.1:10250"
            assert labels["namespace"] and labels["pod"]
            assert "id" not in labels and "name" not in labels
            if name in names_kubelet.NETWORK:
                assert labels["interface"] == "eth0"  # the tunnel devices are dropped
            else:
                assert labels["container"]
    # The e2e pods' throttling counters are there, one series per container with a limit.
    throttled = by_name[names_kubelet.CFS_THROTTLED_SECONDS]
    assert {s["container"] for s in throttled} >= {"compute-pi-digits", "php-apache"}
    # Every pod of the payload has its network, once per pod.
    network = by_name[names_kubelet.NET_RX_BYTES]
    assert len(network) == len({(s["namespace"], s["pod"]) for s in network}) == 18


def test_a_pod_cgroup_row_and_a_node_row_are_dropped() -> None:
    pod_row = 'container="",id="/kubepods/pod1",image="",name="",namespace="a",pod="p"'
    node_row = 'container="",id="/",image="",name="",namespace="",pod=""'
    assert series_labels(names_kubelet.MEMORY_RSS, pod_row, SELECTION, TARGET) is None
    assert series_labels(names_kubelet.MEMORY_RSS, node_row, SELECTION, TARGET) is None
    assert (
        series_labels(names_kubelet.NET_RX_BYTES, node_row + ',interface="eth0"', SELECTION, TARGET)
        is None
    )


def _last_changed(m: re.Match[str]) -> str:
    """The match with the last character of its second group changed."""
    name = m.group(2)
    return m.group(1) + name[:-1] + ("a" if name[-1] != "a" else "b") + m.group(3)


@pytest.mark.parametrize(
    ("pattern", "replacement"),
    [
        # A pod's row renamed as long (another pod in its place): it is another series.
        (r'(?m)^(container_cpu_usage_seconds_total\{[^\n]*pod=")([^"]+)(")', _last_changed),
        # A dropped tunnel row turned into one that is kept, as long as it was.
        (
            r'(?m)^(container_network_receive_bytes_total\{[^\n]*interface=")gre0'
            r'("[^\n]*pod="[^"])',
            r"\g<1>eth9\g<2>",
        ),
    ],
)
def test_text_between_values_changed_in_place_is_read_again(
    pattern: str, replacement: str | Callable[[re.Match[str]], str]
) -> None:
    """A response whose text between the values changed, its length and all, is not read
    by the positions learned from the last one."""
    text, reference = _kept_text()
    keep = SELECTION.metrics
    node = Node()
    _same(_ours(text, keep, node), reference)
    assert node.cache.layout is not None
    changed, n = re.subn(pattern, replacement, text, count=1)
    assert n == 1 and len(changed) == len(text) and changed != text
    _same(_ours(changed, keep, node), _reference(changed, keep))


def test_a_comment_that_ends_as_a_sample_does_never_moves_the_values() -> None:
    """HELP texts ending in "} 5" are cut like a sample's value: which comment is cut may
    change with the text between the values as before, so such a text is not read by
    position."""
    rows = (
        'm_a{container="c",namespace="n",pod="p"} 1\nm_b{container="c",namespace="n",pod="p"} 2\n'
    )
    a_row, b_row = rows.splitlines(keepends=True)
    first = f"# HELP m_a A}} 5\n# TYPE m_a gauge\n{a_row}# HELP m_b B\n# TYPE m_b gauge\n{b_row}"
    then = f"# HELP m_a A\n# TYPE m_a gauge\n{a_row}# HELP m_b B}} 5\n# TYPE m_b gauge\n{b_row}"
    keep = frozenset({"m_a", "m_b"})
    node = Node()
    _same(_ours(first, keep, node), _reference(first, keep))
    _same(_ours(then, keep, node), _reference(then, keep))
