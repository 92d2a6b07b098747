"""Pure pieces: quantities, patches, selectors, cron, number formatting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.quantity import format_bytes, format_cpu, parse_quantity
from simulator.cron import CronSchedule
from simulator.errors import ApiError
from simulator.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from simulator.promtext import _go_float_slow, go_float
from simulator.selectors import LabelSelector


def test_quantities() -> None:
    assert parse_quantity("250m") == 0.25
    assert parse_quantity("1Gi") == 2**30
    assert parse_quantity("1e3") == 1000
    assert parse_quantity(2) == 2.0
    assert format_cpu(0.25) == "250m" and format_cpu(2) == "2"
    assert format_bytes(512 * 2**20) == "512Mi" and format_bytes(1000) == "1000"
    with pytest.raises(ValueError):
        parse_quantity("12 cores")


def test_merge_patch_removes_nulls() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"c": 5}}) == {
        "b": {"c": 5, "d": 3}
    }


def test_strategic_merge_by_key_and_directives() -> None:
    doc = {
        "containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}],
        "finalizers": ["x"],
    }
    out = strategic_merge_patch(
        doc,
        {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "2"}, {"name": "a", "$patch": "delete"}],
            "finalizers": ["y"],
        },
    )
    assert out == {"containers": [{"name": "b", "image": "2"}], "finalizers": ["x", "y"]}


def test_json_patch_ops_and_errors() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "move", "from": "/b/c", "path": "/d"},
            {"op": "test", "path": "/d", "value": 1},
        ],
    )
    assert out == {"a": [1, 2, 3], "b": {}, "d": 1}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "replace", "path": "/zz", "value": 1}])


def test_label_selectors() -> None:
    sel = LabelSelector.parse("app=web,tier in (a, b),!canary,env")
    assert sel.matches({"app": "web", "tier": "a", "env": "x"})
    assert not sel.matches({"app": "web", "tier": "a", "env": "x", "canary": "1"})
    with pytest.raises(ApiError) as e:
        LabelSelector.parse("app = = web")
    assert e.value.code == 400
    with pytest.raises(ApiError):
        LabelSelector.parse("!x in (a)")


def test_cron_next_after() -> None:
    def at(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()

    every_30 = CronSchedule.parse("*/30 * * * *")
    assert every_30.next_after(at("2025-01-01T10:05:00")) == at("2025-01-01T10:30:00")
    weekdays = CronSchedule.parse("0 9 * * 1-5")
    assert weekdays.next_after(at("2025-01-03T10:00:00")) == at("2025-01-06T09:00:00")
    assert CronSchedule.parse("@daily").next_after(at("2025-01-01T00:00:00")) == at(
        "2025-01-02T00:00:00"
    )
    with pytest.raises(ValueError):
        CronSchedule.parse("* * *")


def test_go_float_matches_the_go_client() -> None:
    assert go_float(12533760.0) == "1.253376e+07"
    assert go_float(4.710169) == "4.710169"
    assert go_float(0.0) == "0"
    assert go_float(1e-05) == "1e-05"


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e7, max_value=1e7))
def test_go_float_fast_path_agrees_with_the_general_one(value: float) -> None:
    assert go_float(value) == _go_float_slow(value)
