"""Alerting on a really full disk (a small tmpfs): the outbox and the alert state keep working
from memory, say so once, and reach the disk, in order, once it takes writes again."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from alerts.notify.outbox import Outbox, read_outbox
from alerts.rules.group import EvalContext
from alerts.rules.manager import RuleManager
from alerts.settings import RuleSettings
from bench.chaos_disk import SmallDisk
from promql import Engine
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

RULES = """groups:
- name: g
  interval: 1m
  rules:
  - alert: Up
    expr: vector(time())
    for: 5m
    annotations:
      summary: "{{ $value }} %s"
"""
# Each round changes the annotation: the state's change record (bigger than the slack of the
# file's last disk block) needs space the full disk does not have.
RULES %= "x" * 20_000


def test_the_outbox_goes_on_from_memory_and_catches_up(
    disk: SmallDisk, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(disk.path / "outbox")
    first = outbox.enqueue("team", b"before", 1)
    disk.fill()
    with caplog.at_level(logging.WARNING, logger="alerts.notify.outbox"):
        during = [outbox.enqueue("team", b"x" * 50_000, 2 + i) for i in range(5)]
        outbox.finish(first.id, "delivered")
        assert outbox.write_failing
        assert set(outbox.pending) == {e.id for e in during}
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and str(disk.path) in errors[0].getMessage()
        disk.release()
        after = outbox.enqueue("team", b"after", 10)
    assert not outbox.write_failing
    assert "written again" in caplog.text
    # A crash now: the file holds every record, in order.
    found = read_outbox(disk.path / "outbox")
    assert list(found.pending) == [*(e.id for e in during), after.id]
    outbox.close()


def test_the_alert_state_is_saved_again_once_the_disk_takes_it(
    disk: SmallDisk, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "r.yml").write_text(RULES)
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    settings = RuleSettings(
        files=[tmp_path / "r.yml"], state_dir=disk.path / "state", builtin=False
    )
    manager = RuleManager(settings, EvalContext(Engine(store), store), lambda rule, alerts: None)
    assert manager.reload()
    state = disk.path / "state"
    manager.evaluate_due(1)
    manager.commit()
    disk.fill()
    with caplog.at_level(logging.WARNING, logger="alerts.rules.manager"):
        for minute in range(1, 4):
            manager.evaluate_due(minute * 60_000 + 1)
            manager.commit()  # no exception: the rule engine goes on
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "alert state" in errors[0].getMessage()
        disk.release()
        manager.evaluate_due(4 * 60_000 + 1)
        manager.commit()
    assert "saved to" in caplog.text
    # A new process finds the round after the full disk, and the alert's first activeAt.
    again = RuleManager(settings, EvalContext(Engine(store), store), lambda rule, alerts: None)
    assert again.reload()
    assert again.groups[0].last_evaluation_ms == manager.groups[0].last_evaluation_ms
    [alert] = again.groups[0].alerts[0].values()
    [before] = manager.groups[0].alerts[0].values()
    assert alert.active_at == before.active_at
    assert list(state.iterdir())
    store.close()
