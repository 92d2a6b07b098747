"""Alert state survives a restart: no `for` clock restarts, nothing is re-sent."""

from __future__ import annotations

from pathlib import Path

from alerts.rules.group import EvalContext
from alerts.rules.manager import RuleManager
from alerts.settings import RuleSettings
from promql import Engine
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

RULES = """groups:
- name: g
  interval: 1m
  rules:
  - alert: Up
    expr: vector(1)
    for: 5m
"""


def _manager(tmp_path: Path, sent: list) -> tuple[RuleManager, Store]:
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
    sent: list = []
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
