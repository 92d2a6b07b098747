"""A rule whose series are those of its last evaluation takes a short path (values move in
place, pending alerts may fire, nothing else is looked at): its alerts, the ``ALERTS``
series it writes and what it sends must be what a full evaluation gives."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules.group import EvalContext, GroupState, _Seen
from alerts.rules.loader import load_text
from alerts.rules.model import GroupSpec
from promql import Engine
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

MINUTE = 60_000
PODS = ("a", "b", "c")
# A value the rule leaves out: the series is not found that round.
ABSENT = 1234.0
RULES = """
groups:
- name: g
  limit: {limit}
  rules:
  - alert: High
    expr: m != 1234
    for: 2m
    keep_firing_for: 1m
    labels: {{severity: warning}}
    annotations:
      summary: "{{{{ $labels.pod }}}} at {{{{ $value }}}}"
"""
VALUES = [0.0, -0.0, 1.0, 2.5, math.nan, ABSENT]


class _Run:
    """A store and a group evaluated over it once a minute."""

    def __init__(self, spec: GroupSpec, full: bool) -> None:
        self.store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
        self.group = GroupState(spec, MINUTE)
        self.ctx = EvalContext(Engine(self.store), self.store)
        self.full = full

    def round(self, minute: int, values: list[float]) -> list[tuple[Any, ...]]:
        for pod, value in zip(PODS, values, strict=True):
            self.store.append({"__name__": "m", "pod": pod}, minute * MINUTE, value)
        if self.full:
            # Every series a first sight: the full evaluation at every round.
            self.group._seen = [_Seen() for _ in self.group.spec.rules]
        sends = self.group.evaluate(self.ctx, minute * MINUTE)
        return [(a.labels, a.annotations, a.last_sent_at) for _, sent in sends for a in sent]

    def alerts(self) -> dict[Any, dict[str, Any]]:
        return {
            k: {f: v for f, v in vars(a).items() if f != "_printed"}
            for k, a in self.group.alerts[0].items()
        }

    def written(self, minute: int) -> list[tuple[Any, ...]]:
        result = self.ctx.engine.instant('{__name__=~"ALERTS|ALERTS_FOR_STATE"}', minute * MINUTE)
        return sorted((s.labels, repr(s.values.tolist())) for s in result.series)

    def close(self) -> None:
        self.store.close()


def _same(a: Any, b: Any) -> bool:
    return repr(a) == repr(b)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(VALUES), min_size=3, max_size=3), min_size=1, max_size=14),
    st.sampled_from([0, 2]),
)
def test_a_steady_rule_ends_each_round_as_a_full_evaluation(
    rounds: list[list[float]], limit: int
) -> None:
    (spec,) = load_text(RULES.format(limit=limit), "r.yml")
    steady, full = _Run(spec, full=False), _Run(spec, full=True)
    try:
        for minute, values in enumerate(rounds, start=1):
            sent = steady.round(minute, values)
            assert _same(sent, full.round(minute, values))
            # repr: NaN values compare equal as texts.
            assert _same(steady.alerts(), full.alerts())
            assert steady.group.status[0].health == full.group.status[0].health
            assert steady.written(minute) == full.written(minute)
    finally:
        steady.close()
        full.close()


def test_the_short_path_is_taken_while_the_series_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[int] = []
    short = GroupState._values_moved

    def counted(self: GroupState, *args: Any) -> bool:
        taken.append(args[-2])
        return short(self, *args)

    monkeypatch.setattr(GroupState, "_values_moved", counted)
    (spec,) = load_text(RULES.format(limit=0), "r.yml")
    run = _Run(spec, full=False)
    rounds = [
        [1.0, 2.0, 3.0],  # first sight
        [1.5, 2.0, 3.0],  # the same series: short
        [1.5, 2.0, 3.5],  # short; pending for 2m: fire
        [1.5, ABSENT, 3.5],  # b goes
        [1.5, ABSENT, 3.5],  # b held by keep_firing_for: not short
        [1.5, ABSENT, 4.0],  # b resolved and kept: not short
    ]
    for minute, values in enumerate(rounds, start=1):
        run.round(minute, values)
    assert taken == [2 * MINUTE, 3 * MINUTE]
    states = {dict(k)["pod"]: a.state.value for k, a in run.group.alerts[0].items()}
    assert states == {"a": "firing", "b": "inactive", "c": "firing"}
    run.close()
