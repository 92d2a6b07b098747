"""A rule whose series collide after its labels fails at the round they collide,
however many rounds of the same distinct series came before, and recovers after."""

from __future__ import annotations

from alerts.rules.group import EvalContext, GroupState
from alerts.rules.loader import load_text
from promql import Engine
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

MINUTE = 60_000

RULE = """groups:
- name: g
  rules:
  - record: r
    expr: m
    labels:
      job: same
"""


def test_series_that_collide_fail_the_round_after_rounds_of_the_same_series() -> None:
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    (spec,) = load_text(RULE, "r.yml")
    group = GroupState(spec, MINUTE)
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
  - alert: A
    expr: m
    labels:
      job: same
    annotations:
      summary: "{{ $value }}"
"""


def test_alerts_that_collide_fail_the_round_they_collide() -> None:
    """Rows found again, with the same value or a new one, and rows new to the rule."""
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    (spec,) = load_text(ALERT, "r.yml")
    group = GroupState(spec, MINUTE)
    ctx = EvalContext(Engine(store), store)
    rounds = [(1, "a", 1.0), (2, "a", 1.0), (3, "ab", 1.0), (4, "ab", 2.0), (20, "a", 2.0)]
    health = []
    for minute, jobs, value in rounds:
        for job in jobs:
            store.append({"__name__": "m", "job": job}, minute * MINUTE, value)
        group.evaluate(ctx, minute * MINUTE)
        health.append(group.status[0].health)
        if health[-1] == "err":
            assert "same labelset after applying alert labels" in group.status[0].last_error
    assert health == ["ok", "ok", "err", "err", "ok"]
    assert [a.labels for a in group.alerts[0].values()] == [(("alertname", "A"), ("job", "same"))]
    store.close()
