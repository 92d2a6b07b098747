"""The built-in rules: their own `rules test` fixtures, on by default, disabled or replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.builtin import builtin_names
from alerts.rules.group import EvalContext
from alerts.rules.manager import RuleManager
from alerts.rules.unittest import report, run_file
from alerts.settings import RuleSettings
from autoscaler.forecast.query import ModelForecaster
from autoscaler.settings import Settings
from promql import Engine
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

FIXTURES = sorted((Path(__file__).parent / "builtin").glob("*_test.yml"))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_builtin_rule_fixtures(path: Path) -> None:
    # forecast() as `foresight rules test` and the service evaluate it: the autoscaler's model.
    result = run_file(path, forecaster=ModelForecaster.from_settings(Settings()))
    assert result.ok, report(result)


def test_every_builtin_alert_has_a_fixture() -> None:
    tested = "".join(p.read_text() for p in FIXTURES)
    assert [n for n in builtin_names() if f"alertname: {n}\n" not in tested] == []


def _loaded(tmp_path: Path, **settings: object) -> list[str]:
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    m = RuleManager(RuleSettings(state_dir=tmp_path, **settings), EvalContext(Engine(store), store))  # type: ignore[arg-type]
    assert m.reload()
    store.close()
    return [r.name for g in m.groups for r in g.spec.rules]


def test_on_by_default_disabled_by_name_or_replaced(tmp_path: Path) -> None:
    assert _loaded(tmp_path) == builtin_names()
    assert _loaded(tmp_path, builtin=False) == []
    assert "JobFailed" not in _loaded(tmp_path, disabled_builtin=["JobFailed"])
    mine = tmp_path / "mine.yml"
    mine.write_text("groups:\n- name: mine\n  rules:\n  - alert: JobFailed\n    expr: vector(1)\n")
    names = _loaded(tmp_path, files=[mine])
    assert names.count("JobFailed") == 1 and names[-1] == "JobFailed"
