"""Alert state survives a restart: no `for` clock restarts, nothing is re-sent."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from alerts.rules import persist
from alerts.rules.group import EvalContext, GroupState
from alerts.rules.manager import RuleManager
from alerts.settings import RuleSettings
from promql import Engine
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings
from tsdb.recordlog import frame, write_atomically

RULES = """groups:
- name: g
  interval: 1m
  rules:
  - alert: Up
    expr: vector(1)
    for: 5m
"""


def _manager(tmp_path: Path, sent: list[Any]) -> tuple[RuleManager, Store]:
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    settings = RuleSettings(files=[tmp_path / "r.yml"], state_dir=tmp_path / "state", builtin=False)
    m = RuleManager(
        settings,
        EvalContext(Engine(store), store),
        lambda rule, alerts: sent.extend(alerts),
    )
    assert m.reload()
    return m, store


def test_restart_keeps_active_at_and_sent_state(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(RULES)
    sent: list[Any] = []
    m, store = _manager(tmp_path, sent)
    for minute in range(0, 4):
        m.evaluate_due(minute * 60_000 + 1)
    active_at = m.groups[0].alerts[0][next(iter(m.groups[0].alerts[0]))].active_at
    store.close()
    m2, store2 = _manager(tmp_path, sent)  # a new process
    alert = next(iter(m2.groups[0].alerts[0].values()))
    assert alert.active_at == active_at
    for minute in range(4, 8):
        m2.evaluate_due(minute * 60_000 + 1)
    assert len(sent) == 1  # fired once, at activeAt + 5m
    assert sent[0].fired_at - sent[0].active_at >= 300_000
    store2.close()


def test_invalid_file_keeps_last_good_rules(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(RULES)
    m, store = _manager(tmp_path, [])
    (tmp_path / "r.yml").write_text(RULES.replace("vector(1)", "vector(1"))
    assert not m.reload()
    assert "r.yml:6:11" in m.last_error
    assert len(m.groups) == 1
    store.close()


CHANGING = """groups:
- name: g
  interval: 1m
  rules:
  - alert: High
    expr: load > 1
    for: 2m
    annotations:
      summary: "load {{ $value }}"
  - record: load:doubled
    expr: load * 2
  - alert: High
    expr: load > 5
    keep_firing_for: 3m
- name: h
  interval: 1m
  rules:
  - alert: Any
    expr: count(load) > 0
"""


def _states(m: RuleManager) -> list[tuple[str, int, list[dict[str, object]]]]:
    def alerts(g: GroupState) -> list[dict[str, object]]:
        # The annotations as read, not the texts an alert printed last (a cache).
        return [
            {
                **{k: v for k, v in vars(a).items() if not k.startswith("_")},
                "annotations": a.annotations,
            }
            for alerts in g.alerts
            for a in alerts.values()
        ]

    return [(g.spec.key, g.last_evaluation_ms, alerts(g)) for g in m.groups]


@pytest.mark.parametrize("rewrite_after", [0, 1 << 20])
def test_every_round_restores_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rewrite_after: int
) -> None:
    """Alerts appearing, firing, resolving, forgotten, annotations changing: after each
    round a new process finds exactly the state the running one has (with the file
    rewritten now and then, or only changes appended)."""
    monkeypatch.setattr(persist, "REWRITE_AFTER_BYTES", rewrite_after)
    (tmp_path / "r.yml").write_text(CHANGING)
    m, store = _manager(tmp_path, [])
    for minute in range(40):
        at = minute * 60_000 + 1
        for pod in range(6):
            # Pods come and go; their load moves.
            if (minute + pod) % 9 < 6:
                store.append({"__name__": "load", "pod": str(pod)}, at - 1, (minute * pod) % 8)
        m.evaluate_due(at)
        again, other = _manager(tmp_path, [])
        assert _states(again) == _states(m), f"minute {minute}"
        again.close()
        other.close()
    assert (tmp_path / "state" / "rules.state").stat().st_size > 0
    m.close()
    store.close()


def test_a_torn_last_record_loses_only_that_round(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(CHANGING)
    m, store = _manager(tmp_path, [])
    path = tmp_path / "state" / "rules.state"
    for minute in range(5):
        store.append({"__name__": "load", "pod": "a"}, minute * 60_000, 3 + minute)
        m.evaluate_due(minute * 60_000 + 1)
        if minute == 3:
            before = _states(m)
            size = path.stat().st_size
    assert path.stat().st_size > size
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size - 3)  # the machine died mid-write
    again, other = _manager(tmp_path, [])
    assert _states(again) == before
    m.close()
    store.close()
    again.close()
    other.close()


def test_a_state_file_of_one_snapshot_is_read(tmp_path: Path) -> None:
    """The format written before change records existed."""
    (tmp_path / "r.yml").write_text(RULES)
    state = {
        f"{tmp_path / 'r.yml'};g": {
            "last": 120_000,
            "rules": [
                [
                    ["alert", "Up", "vector(1)"],
                    [[[["alertname", "Up"]], [], "pending", 1.0, 60_000, 0, 0, 0, 0, 0]],
                ]
            ],
        }
    }
    (tmp_path / "state").mkdir()
    write_atomically(tmp_path / "state" / "rules.state", frame(1, json.dumps(state).encode()))
    m, store = _manager(tmp_path, [])
    [alert] = m.groups[0].alerts[0].values()
    assert (alert.active_at, m.groups[0].last_evaluation_ms) == (60_000, 120_000)
    store.close()


def test_records_naming_group_and_rule_in_full_are_read(tmp_path: Path) -> None:
    """The format written before records held a table of rules: a base, then changes."""
    (tmp_path / "r.yml").write_text(RULES)
    key = f"{tmp_path / 'r.yml'};g"
    rule = ["alert", "Up", "vector(1)", 0]
    row = [0, key, rule, [["alertname", "Up"]], [["a", "1"]], "pending", 1.0, 60_000, 0, 0, 0, 0, 0]
    base = {"groups": {key: 60_000}, "alerts": [row]}
    change = {
        "groups": {key: 120_000},
        "put": [[1, key, rule, [["alertname", "Up"], ["x", "y"]], [], "firing", 2.0] + [0] * 6],
        "update": [[0, "firing", 3.0, 60_000, 120_000, 0, 0, 0, 0]],
        "annotations": [[0, [["a", "2"]]]],
        "gone": [],
    }
    (tmp_path / "state").mkdir()
    data = frame(2, json.dumps(base).encode()) + frame(3, json.dumps(change).encode())
    write_atomically(tmp_path / "state" / "rules.state", data)
    m, store = _manager(tmp_path, [])
    alerts = {a.labels: a for a in m.groups[0].alerts[0].values()}
    first = alerts[(("alertname", "Up"),)]
    assert (first.state.value, first.value, first.fired_at) == ("firing", 3.0, 120_000)
    assert first.annotations == (("a", "2"),)
    assert (("alertname", "Up"), ("x", "y")) in alerts
    assert m.groups[0].last_evaluation_ms == 120_000
    store.close()


RAW = """groups:
- name: g
  interval: 1m
  rules:
  - alert: Raw
    expr: load
"""


def _values(m: RuleManager) -> list[str]:
    # repr: NaN equals nothing, -0.0 equals 0.0.
    return [repr(a.value) for alerts in m.groups[0].alerts for a in alerts.values()]


@pytest.mark.parametrize("rewrite_after", [0, 1 << 20])
def test_values_that_are_not_finite_are_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rewrite_after: int
) -> None:
    monkeypatch.setattr(persist, "REWRITE_AFTER_BYTES", rewrite_after)
    (tmp_path / "r.yml").write_text(RAW)
    m, store = _manager(tmp_path, [])
    specials = [math.inf, -math.inf, math.nan, -0.0, 2.5]
    m.evaluate_due(1)  # the first call sets the groups' schedule
    for minute in range(1, len(specials) + 1):
        at = minute * 60_000 + 1
        for pod in range(len(specials)):
            value = specials[(pod + minute) % len(specials)]
            # Before the round's time, wherever in the minute the group's offset puts it.
            store.append({"__name__": "load", "pod": str(pod)}, at - 60_000, value)
        m.evaluate_due(at)
        assert sorted(_values(m)) == sorted(map(repr, specials))
        again, other = _manager(tmp_path, [])
        assert _values(again) == _values(m), f"minute {minute}"
        again.close()
        other.close()
    m.close()
    store.close()
