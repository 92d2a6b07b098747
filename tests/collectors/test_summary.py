"""The summary API read from real kubelets' documents: the typed fields are the Summary API's
(``stats/v1alpha1``) as real kubelets fill them, and every sample is the document's number."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from collectors.cadvisor import TargetLabels
from collectors.summary import (
    Summary,
    SummaryError,
    decode_summary,
    decode_summary_whole,
    summary_samples,
)
from runtime import names, names_kubelet
from tests.support.external import require_data

REAL = ["stats_summary_metrics-server.json", "nri-kubernetes-1_35/kubelet_stats_summary"]
TARGET = TargetLabels("n1", "10.0.0.1:10250", "/stats/summary")


def _by_name(
    samples: list[tuple[tuple[tuple[str, str], ...], float]],
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for labels, value in samples:
        found = dict(labels)
        name = found.pop("__name__")
        assert found.pop("job") == "kubelet" and found.pop("metrics_path") == "/stats/summary"
        assert found.pop("node") == "n1" and found.pop("instance") == "10.0.0.1:10250"
        out.setdefault(name, {})[tuple(sorted(found.items()))] = value
    return out


@pytest.mark.parametrize("fixture", REAL)
def test_real_documents_have_the_summary_api_types(fixture: str) -> None:
    text = require_data(f"k8s/{fixture}").read_text()
    # Strict: a count that came as a string or a float would fail, as Go's int64 would.
    checked = TypeAdapter(Summary).validate_python(json.loads(text), strict=True)
    # Every field read is there, with the type the Summary API gives it.
    assert checked["node"]["fs"]["capacityBytes"] > 0
    assert checked["node"]["runtime"]["imageFs"]["usedBytes"] > 0
    assert any("ephemeral-storage" in p for p in checked["pods"])
    assert all(p["podRef"]["name"] for p in checked["pods"])


@pytest.mark.parametrize("fixture", REAL)
def test_every_sample_is_the_documents_number(fixture: str) -> None:
    text = require_data(f"k8s/{fixture}").read_text()
    raw: dict[str, Any] = json.loads(text)
    got = _by_name(summary_samples(decode_summary(text), TARGET))
    node = raw["node"]
    fs = got[names.NODE_FS_CAPACITY]
    assert fs[(("filesystem", "nodefs"),)] == node["fs"]["capacityBytes"]
    assert (
        got[names.NODE_FS_AVAILABLE][(("filesystem", "imagefs"),)]
        == (node["runtime"]["imageFs"]["availableBytes"])
    )
    assert got[names.NODE_FS_INODES_FREE][(("filesystem", "nodefs"),)] == node["fs"]["inodesFree"]
    ephemeral = got[names.POD_EPHEMERAL_STORAGE_USED]
    expected = {
        (("namespace", p["podRef"]["namespace"]), ("pod", p["podRef"]["name"])): p[
            "ephemeral-storage"
        ]["usedBytes"]
        for p in raw["pods"]
        if "ephemeral-storage" in p
    }
    assert ephemeral == expected
    volumes = got[names.POD_VOLUME_USED]
    assert volumes == {
        (
            ("namespace", p["podRef"]["namespace"]),
            ("pod", p["podRef"]["name"]),
            ("volume", v["name"]),
        ): v["usedBytes"]
        for p in raw["pods"]
        for v in p.get("volume", [])
    }
    # Neither document has a claim: no kubelet_volume_stats_* series.
    assert names_kubelet.VOLUME_USED not in got


def test_a_claims_volume_gets_the_kubelets_names() -> None:
    doc = {
        "node": {"nodeName": "n1", "fs": {"capacityBytes": 100, "availableBytes": 40}},
        "pods": [
            {
                "podRef": {"name": "db-0", "namespace": "shop", "uid": "u"},
                "volume": [
                    {
                        "name": "data",
                        "pvcRef": {"name": "data-db-0", "namespace": "shop"},
                        "capacityBytes": 10,
                        "availableBytes": 3,
                        "usedBytes": 7,
                        "inodes": 100,
                        "inodesFree": 90,
                        "inodesUsed": 10,
                    },
                    {"name": "cache", "usedBytes": 5},
                ],
            },
            {
                "podRef": {"name": "", "namespace": "shop"},
                "volume": [{"name": "x", "usedBytes": 1}],
            },
        ],
    }
    got = _by_name(summary_samples(decode_summary(json.dumps(doc)), TARGET))
    claim = (("namespace", "shop"), ("persistentvolumeclaim", "data-db-0"))
    assert {
        name: got[name][claim]
        for name in names_kubelet.__dict__.values()
        if isinstance(name, str) and name in got
    } == {
        names_kubelet.VOLUME_CAPACITY: 10,
        names_kubelet.VOLUME_AVAILABLE: 3,
        names_kubelet.VOLUME_USED: 7,
        names_kubelet.VOLUME_INODES: 100,
        names_kubelet.VOLUME_INODES_FREE: 90,
        names_kubelet.VOLUME_INODES_USED: 10,
    }
    assert got[names.POD_VOLUME_USED] == {
        (
            ("namespace", "shop"),
            ("persistentvolumeclaim", "data-db-0"),
            ("pod", "db-0"),
            ("volume", "data"),
        ): 7,
        (("namespace", "shop"), ("pod", "db-0"), ("volume", "cache")): 5,
    }
    # What the kubelet left out is no sample, never a zero.
    assert names.NODE_FS_USED not in got
    assert got[names.NODE_FS_CAPACITY] == {(("filesystem", "nodefs"),): 100}


@pytest.mark.parametrize(
    ("text", "message"),
    [("[]", "not a JSON object"), ("{", "not JSON"), ('{"pods": []}', "no node object")],
)
def test_what_is_not_a_summary_is_an_error(text: str, message: str) -> None:
    with pytest.raises(SummaryError, match=message):
        decode_summary(text)


# Any JSON value: what a field holds in a document of another shape.
_ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
_NUMBER = st.integers(0, 2**64) | st.floats(0, 1e20) | _ANY
_FS = st.fixed_dictionaries(
    {},
    optional={
        key: _NUMBER
        for key in ("capacityBytes", "availableBytes", "usedBytes", "inodes", "inodesFree")
    }
    | {"time": st.just("2026-06-26T10:14:31Z"), "inodesUsed": _NUMBER},
)
_NAME = st.sampled_from(["", "a", "data", "ns-1"]) | _ANY
_VOLUME = (
    st.fixed_dictionaries(
        {"name": _NAME},
        optional={
            "pvcRef": st.fixed_dictionaries({"name": _NAME, "namespace": _NAME}) | _ANY,
            "usedBytes": _NUMBER,
            "capacityBytes": _NUMBER,
            "inodesUsed": _NUMBER,
        },
    )
    | _ANY
)
_POD = (
    st.fixed_dictionaries(
        {"podRef": st.fixed_dictionaries({"name": _NAME, "namespace": _NAME}) | _ANY},
        optional={
            "volume": st.lists(_VOLUME, max_size=3) | _ANY,
            "ephemeral-storage": _FS | _ANY,
            "containers": st.lists(_ANY, max_size=2),
        },
    )
    | _ANY
)
_NODE = (
    st.fixed_dictionaries(
        {"nodeName": st.just("n1")},
        optional={
            "fs": _FS | _ANY,
            "runtime": st.fixed_dictionaries({}, optional={"imageFs": _FS, "containerFs": _FS})
            | _ANY,
        },
    )
    | _ANY
)
_DOCUMENT = st.fixed_dictionaries({}, optional={"node": _NODE, "pods": st.lists(_POD) | _ANY})


def _read(decode: Callable[[str], Summary], text: str) -> str:
    """The samples of ``text`` (NaN equal to NaN), or the error."""
    try:
        return repr(summary_samples(decode(text), TARGET))
    except SummaryError as e:
        return str(e)


@settings(max_examples=300, deadline=None)
@given(_DOCUMENT)
def test_the_fields_read_alone_give_what_the_whole_document_gives(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    assert _read(decode_summary, text) == _read(decode_summary_whole, text)


@pytest.mark.parametrize("fixture", REAL)
def test_a_real_document_read_by_its_fields_alone(fixture: str) -> None:
    text = require_data(f"k8s/{fixture}").read_text()
    assert _read(decode_summary, text) == _read(decode_summary_whole, text)


@pytest.mark.parametrize(
    "text",
    [
        '{"node": {"fs": {"usedBytes": 1, "usedBytes": 2}}, "pods": []}',  # the last one
        '{"node": {"fs": {"usedBytes": NaN, "capacityBytes": Infinity}}}',
        '{"node": {"fs": {"usedBytes": 1e400}}}',
        '{"node": {}, "pods": [1, {"podRef": {"name": "p", "namespace": "n"}, "volume": {}}]}',
        '{"node": {"fs": {"usedBytes": 1}}} trailing',
        '{"node": {"fs": {"usedBytes": 1}}}\n',
    ],
)
def test_odd_documents_read_by_their_fields_alone(text: str) -> None:
    assert _read(decode_summary, text) == _read(decode_summary_whole, text)
