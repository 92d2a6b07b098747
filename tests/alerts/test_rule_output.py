"""What rules write back to the store over several evaluations: recorded series found again
by id, stale markers for series that vanish, and alert templates expanded anew whenever
their value (or, through ``query``, the store) changes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.rules import group as group_module
from alerts.rules.group import EvalContext, GroupState
from alerts.rules.loader import load_text
from alerts.rules.model import RuleSpec
from alerts.rules.templates import Expander
from promql import Engine
from runtime.clock import VirtualClock
from tsdb import Series, Store, StoreSettings, is_stale
from tsdb.labels import Labels, Matcher, eq, name_is

MINUTE = 60_000


def _group(text: str) -> GroupState:
    (spec,) = load_text(text, "r.yml")
    return GroupState(spec, MINUTE)


def _store() -> Store:
    return Store(StoreSettings(), VirtualClock(0.0), persistent=False)


def _samples(store: Store, name: str) -> dict[Labels, list[tuple[int, float]]]:
    return {
        s.labels: list(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
        for s in store.select([name_is(name)], 0, 100 * MINUTE)
    }


RECORD = """groups:
- name: g
  rules:
  - record: job:m:sum
    expr: sum by (job) (m)
  - record: m:copy
    expr: label_replace(m, "copy", "c-$1", "job", "(.*)")
    labels:
      team: infra
  - record: m:empty
    expr: m
    labels:
      team: ""
"""


def test_recorded_series_keep_their_ids_and_vanished_ones_get_stale_markers() -> None:
    store = _store()
    group = _group(RECORD)
    ctx = EvalContext(Engine(store), store)
    jobs_by_round = [["a", "b"], ["a", "b"], ["a", "c"], ["a", "c"]]
    for k, jobs in enumerate(jobs_by_round):
        t = (k + 1) * MINUTE
        for i, job in enumerate(jobs):
            store.append({"__name__": "m", "job": job}, t, float(i + k))
        for job in set(jobs_by_round[k - 1]) - set(jobs) if k else ():
            store.mark_stale({"__name__": "m", "job": job}, t)
        group.evaluate(ctx, t)
    assert group.failures == 0
    sums = _samples(store, "job:m:sum")
    assert [v for _, v in sums[(("__name__", "job:m:sum"), ("job", "a"))]] == [0.0, 1.0, 2.0, 3.0]
    b = sums[(("__name__", "job:m:sum"), ("job", "b"))]
    assert [v for _, v in b[:2]] == [1.0, 2.0]
    assert b[2][0] == 3 * MINUTE and is_stale(b[2][1])
    copies = _samples(store, "m:copy")
    assert set(copies) == {
        (("__name__", "m:copy"), ("copy", f"c-{job}"), ("job", job), ("team", "infra"))
        for job in "abc"
    }
    assert [v for _, v in copies[next(k for k in copies if ("job", "c") in k)]] == [3.0, 4.0]
    # A rule label set to "" removes the label, as in Prometheus.
    empty = _samples(store, "m:empty")
    assert (("__name__", "m:empty"), ("job", "a")) in empty
    # Every series written once: ids were found again rather than created anew.
    assert len(store.series([name_is("m:copy")])) == 3


# Every series of m written as one: job is the rule's.
SAME_JOB = """groups:
- name: g
  rules:
  - record: r
    expr: m
    labels:
      job: same
"""


def test_labels_that_collide_after_rule_labels_fail_the_rule() -> None:
    store = _store()
    group = _group(SAME_JOB)
    store.append({"__name__": "m", "job": "a"}, MINUTE, 1.0)
    store.append({"__name__": "m", "job": "b"}, MINUTE, 1.0)
    group.evaluate(EvalContext(Engine(store), store), MINUTE)
    assert group.status[0].health == "err"
    assert "same labelset after applying rule labels" in group.status[0].last_error


def test_series_that_collide_fail_the_round_after_rounds_of_the_same_series() -> None:
    """A rule whose series collide after its labels fails at the round they collide,
    however many rounds of the same distinct series came before, and recovers after."""
    store = _store()
    group = _group(SAME_JOB)
    ctx = EvalContext(Engine(store), store)
    health = []
    # Series b goes, and leaves the lookback window, before the last rounds.
    rounds = [(1, "a"), (2, "a"), (3, "a"), (4, "ab"), (5, "ab"), (20, "a"), (21, "a")]
    for minute, jobs in rounds:
        for job in jobs:
            store.append({"__name__": "m", "job": job, "k": "1"}, minute * MINUTE, 1.0)
        group.evaluate(ctx, minute * MINUTE)
        health.append(group.status[0].health)
    assert health == ["ok", "ok", "ok", "err", "err", "ok", "ok"]
    assert "same labelset after applying rule labels" not in group.status[0].last_error
    store.close()


ALERT = """groups:
- name: g
  rules:
  - alert: High
    expr: m > -1
    labels:
      level: "{{ if gt $value 5.0 }}high{{ else }}low{{ end }}"
    annotations:
      value: "{{ $value }}"
      other: "{{ with query \\"n\\" }}{{ . | first | value }}{{ end }}"
"""


@pytest.mark.parametrize(
    ("values", "want"),
    [
        ([1.0, 1.0, 7.0], ["1", "1", "7"]),
        ([-0.0, 0.0, -0.0], ["-0", "0", "-0"]),
        ([math.nan, math.nan, 2.0], ["NaN", "NaN", "2"]),
    ],
)
def test_alert_templates_follow_the_value(values: list[float], want: list[str]) -> None:
    store = _store()
    group = _group(ALERT)
    ctx = EvalContext(Engine(store), store)
    got = []
    for k, value in enumerate(values):
        t = (k + 1) * MINUTE
        store.append({"__name__": "m", "job": "a"}, t, value)
        store.append({"__name__": "n"}, t, float(k))
        group.evaluate(ctx, t)
        if not math.isnan(value):
            (alert,) = (a for a in group.alerts[0].values() if a.state.value != "inactive")
            got.append(dict(alert.annotations)["value"])
            assert dict(alert.annotations)["other"] == str(k)
            level = "high" if value > 5 else "low"
            assert ("level", level) in alert.labels
    assert got == [w for w, v in zip(want, values, strict=True) if not math.isnan(v)]


def test_alerts_series_follow_the_alert_state() -> None:
    store = _store()
    group = _group(
        """groups:
- name: g
  rules:
  - alert: Up
    expr: m > 0
    for: 2m
"""
    )
    ctx = EvalContext(Engine(store), store)
    for k, value in enumerate([1.0, 1.0, 1.0, 0.0]):
        t = (k + 1) * MINUTE
        store.append({"__name__": "m"}, t, value)
        group.evaluate(ctx, t)
    got = {
        dict(s.labels)["alertstate"]: s.values
        for s in store.select([name_is("ALERTS")], 0, 10 * MINUTE)
    }
    assert list(got["pending"][:2]) == [1.0, 1.0] and is_stale(float(got["pending"][2]))
    assert got["firing"][0] == 1.0 and is_stale(float(got["firing"][1]))
    (for_state,) = store.select([name_is("ALERTS_FOR_STATE"), eq("alertname", "Up")], 0, 10**7)
    assert np.array_equal(for_state.values[:3], [60.0, 60.0, 60.0])
    assert is_stale(float(for_state.values[3]))


def test_alert_labels_that_expand_to_nothing_are_removed() -> None:
    store = _store()
    group = _group(
        """groups:
- name: g
  rules:
  - alert: Up
    expr: m > 0
    labels:
      team: '{{ if eq $labels.job "b" }}b-team{{ end }}'
      job: ""
"""
    )
    store.append({"__name__": "m", "job": "a"}, MINUTE, 1.0)
    group.evaluate(EvalContext(Engine(store), store), MINUTE)
    (alert,) = group.alerts[0].values()
    assert alert.labels == (("alertname", "Up"),)


SERIES_ALERT = """groups:
- name: g
  rules:
  - alert: Load
    expr: label_replace(m, "copy", "x-$1", "pod", "(.*)") > 0
    annotations:
      summary: "{{ $labels.copy }} at {{ $value }}"
      pod: "{{ $labels.pod }}"
"""


class _Plain:
    """A querier that hands over label tuples, not the store's codes."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        return self.store.select(matchers, start_ms, end_ms)


@pytest.mark.parametrize("coded", [True, False])
@pytest.mark.parametrize("noted", [True, False])
def test_alerts_follow_series_that_come_go_and_move_between_rows(
    coded: bool, noted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule's alerts are found again from one evaluation to the next (by label codes, or
    by labels from a querier without them): series added, gone, their values moving or
    not, labels the query made up. A series seen before with the same value is not
    templated again."""
    store = _store()
    # Annotations printed when read (prepared once, at first sight), or expanded at each
    # evaluation (a template that is not plain, though it prints the same).
    rules = SERIES_ALERT if noted else SERIES_ALERT.replace(' }}"', ' }}{{ if true }}{{ end }}"')
    group = _group(rules)
    ctx = EvalContext(Engine(store if coded else _Plain(store)), store)
    expanded: list[Labels] = []
    name = "_prepare" if noted else "_expand"
    whole = getattr(group_module, name)

    def counted(expander: Expander, rule: RuleSpec, labels: Labels, *value: float) -> Any:
        expanded.append(labels)
        return whole(expander, rule, labels, *value)

    monkeypatch.setattr(group_module, name, counted)
    before: set[str] = set()
    rounds = [
        {"a": 1.0, "b": 2.0, "c": 3.0},
        {"a": 1.0, "b": 5.0, "c": 3.0},
        {"c": 3.0, "d": 4.0, "a": 1.0},
        {"d": 4.0, "b": 2.0},
        {"e": 1.0, "d": 6.0, "b": 2.0, "a": -0.0},
        {"e": 1.0, "d": 6.0, "b": 2.0, "a": 7.0},
    ]
    for k, loads in enumerate(rounds):
        t = (k + 1) * MINUTE
        for pod, value in loads.items():
            store.append({"__name__": "m", "pod": pod}, t, value)
        for pod in set("abcde") - set(loads):
            store.mark_stale({"__name__": "m", "pod": pod}, t)
        expanded.clear()
        group.evaluate(ctx, t)
        assert group.failures == 0
        returned = {pod for pod, v in loads.items() if v > 0}
        assert {dict(lb)["pod"] for lb in expanded} == returned - before
        before = returned
        active = {
            dict(a.labels)["pod"]: (a.value, dict(a.annotations))
            for a in group.alerts[0].values()
            if a.state.value != "inactive"
        }
        assert active == {
            pod: (v, {"summary": f"x-{pod} at {v:g}", "pod": pod})
            for pod, v in loads.items()
            if v > 0
        }, f"round {k}"


_NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n != "__name__"
)


@given(st.dictionaries(_NAMES, st.text(max_size=3), min_size=1, max_size=6))
def test_alert_series_labels_are_the_alerts_with_name_and_state(labels: dict[str, str]) -> None:
    alert = tuple(sorted(labels.items()))
    for extra in [(), (("alertstate", "firing"),)]:
        want = tuple(sorted({**labels, "__name__": "ALERTS", **dict(extra)}.items()))
        assert group_module._named(alert, "ALERTS", *extra) == want
