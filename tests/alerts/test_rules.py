"""Rule files, templating, the state machine and `rules test` on promtool's fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.rules.errors import RuleFileErrors
from alerts.rules.loader import load_files, load_text
from alerts.rules.state import AlertState, Found, step, to_send
from alerts.rules.templates import expand
from alerts.rules.unittest import report, run_file

sys.path.insert(0, str(Path(__file__).parent))
from conftest import DATA, require

from tests.support import alert_rounds

TESTS = DATA / "promql" / "rules-tests"
LB = {"instance": "a:9100", "job": "node"}


@pytest.mark.parametrize(
    ("text", "value", "want"),
    [
        ("{{ $labels.instance }} down", 1.0, "a:9100 down"),
        ("{{ $value }}", 1234567.0, "1.234567e+06"),
        ("{{ $value | humanize }}", 1234.5, "1.234k"),
        ("{{ $value | humanize1024 }}", 2048.0, "2ki"),
        ("{{ $value | humanizeDuration }}", 3700.0, "1h 1m 40s"),
        ("{{ $value | humanizePercentage }}", 0.1234, "12.34%"),
        ('{{ printf "%.2f" $value }}', 1.005, "1.00"),
        ("{{ if gt $value 1.0 }}hi{{ else }}lo{{ end }}", 2.0, "hi"),
        ("{{- $x := 3 -}} x={{ $x }}", 0.0, "x=3"),
        ("{{ $labels.missing }}", 0.0, "<no value>"),
    ],
)
def test_templates(text: str, value: float, want: str) -> None:
    assert expand(text, "__alert_X", LB, value) == want


def test_template_errors_read_like_go() -> None:
    out = expand("{{ rat 1 }}", "__alert_X", LB, 1.0)
    assert out == '<error expanding template: template: __alert_X:1: function "rat" not defined>'


def test_real_rule_files_load() -> None:
    groups = load_files([require(DATA / "promql" / "rules" / "kube-prometheus")])
    assert sum(len(g.rules) for g in groups) == 234


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups:\n- name: g\n  rules:\n  - record: x\n    expr: 'test +'\n", "r.yml:5:11:"),
        ("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5x\n", "for:"),
        ("groups:\n- name: g\n  bogus: 1\n  rules: []\n", "r.yml:3:3: field bogus"),
        ("groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n", "repeated"),
    ],
)
def test_rule_file_errors_name_file_line_col(text: str, message: str) -> None:
    with pytest.raises(RuleFileErrors) as e:
        load_text(text, "r.yml")
    assert message in str(e.value)


def test_transitions_for_and_keep_firing() -> None:
    active: dict = {}
    key = (("alertname", "A"),)
    hit = {key: Found((), 1.0)}
    step(active, hit, 0, 120_000, 60_000)
    assert active[key].state is AlertState.PENDING
    assert to_send(active, 0, 60_000, 60_000) == []
    step(active, hit, 120_000, 120_000, 60_000)
    assert active[key].state is AlertState.FIRING
    assert len(to_send(active, 120_000, 60_000, 60_000)) == 1
    step(active, {}, 180_000, 120_000, 60_000)  # kept firing by keep_firing_for
    assert active[key].state is AlertState.FIRING
    step(active, {}, 240_000, 120_000, 60_000)
    assert active[key].state is AlertState.INACTIVE
    assert [a.resolved_at for a in to_send(active, 240_000, 60_000, 60_000)] == [240_000]
    step(active, {}, 240_000 + 15 * 60_000 + 1, 120_000, 0)
    assert key not in active


def test_keep_firing_for_starts_again_when_the_series_comes_back() -> None:
    active: dict = {}
    key = (("alertname", "A"),)
    hit = {key: Found((), 1.0)}
    step(active, hit, 0, 0, 120_000)
    step(active, {}, 60_000, 0, 120_000)
    assert active[key].keep_firing_since == 60_000
    step(active, hit, 120_000, 0, 120_000)
    assert active[key].keep_firing_since == 0
    step(active, {}, 180_000, 0, 120_000)
    step(active, {}, 240_000, 0, 120_000)  # held since 180_000, not since 60_000
    assert active[key].state is AlertState.FIRING
    step(active, {}, 300_000, 0, 120_000)
    assert active[key].state is AlertState.INACTIVE


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.integers(0, 5))
def test_state_machine_matches_a_simple_model(present: list[bool], for_steps: int) -> None:
    active: dict = {}
    key = (("alertname", "A"),)
    run = 0
    for i, p in enumerate(present):
        step(active, {key: Found((), 1.0)} if p else {}, i * 60_000, for_steps * 60_000, 0)
        run = run + 1 if p else 0
        alert = active.get(key)
        if p:
            assert alert is not None
            want = AlertState.FIRING if run - 1 >= for_steps else AlertState.PENDING
            assert alert.state is want
        else:
            assert alert is None or alert.state is AlertState.INACTIVE


PASSING = [
    "at-modifier-test.yml",
    "long-period.yml",
    "negative-offset-test.yml",
    "no-test-group-interval.yml",
    "rules_run_fuzzy.yml",
    "start-time-test.yml",
    "unittest-nohist-2.42.yml",
]
FAILING = [
    "bad-input-series.yml",
    "bad-promql.yml",
    "bad-rules-error-test.yml",
    "bad-rules-syntax-test.yml",
    "failing.yml",
    "rules_run.yml",
    "rules_run_no_fuzzy.yml",
]


@pytest.mark.parametrize("name", PASSING)
def test_promtool_fixtures_pass(name: str) -> None:
    result = run_file(require(TESTS / name))
    assert result.ok, result.errors


@pytest.mark.parametrize("name", FAILING)
def test_promtool_fixtures_meant_to_fail_fail(name: str) -> None:
    assert not run_file(require(TESTS / name)).ok


def test_run_filter_selects_groups() -> None:
    assert run_file(require(TESTS / "rules_run.yml"), run="correct").ok


def test_failing_output_matches_promtool() -> None:
    text = report(run_file(require(TESTS / "failing.yml")))
    assert 'exp: {__name__="test"} 1E+00\n        got: {__name__="test"} 0E+00' in text
    assert 'Labels:{alertname="InstanceDown", job="test", severity="page"}' in text


def test_step_and_to_send_copy_alerts_whose_state_changes_and_move_values_in_place() -> None:
    """A round over a shallow copy of the alerts (the service's working copy) leaves the
    state and times of the alerts readers hold as they were: an alert whose state or times
    change is a new object. A value moves in place, as Prometheus' do."""
    steady, moving = (("alertname", "A"), ("n", "1")), (("alertname", "A"), ("n", "2"))
    active: dict = {}
    step(active, {steady: Found((), 1.0), moving: Found((), 1.0)}, 0, 60_000, 0)
    step(active, {steady: Found((), 1.0), moving: Found((), 1.0)}, 60_000, 60_000, 0)
    assert len(to_send(active, 60_001, 60_000, 60_000)) == 2
    readers = dict(active)

    def held() -> dict:
        return {k: {**vars(a), "value": None} for k, a in readers.items()}

    seen = held()
    work = dict(active)
    step(work, {steady: Found((), 1.0), moving: Found((), 2.0)}, 90_000, 60_000, 0)
    sent = to_send(work, 90_000, 60_000, 60_000)
    assert held() == seen and not sent
    assert work[steady] is readers[steady]
    assert work[moving] is readers[moving] and readers[moving].value == 2.0
    step(work, {steady: Found((), 1.0)}, 120_000, 60_000, 0)
    assert held() == seen
    assert work[moving].state is AlertState.INACTIVE
    assert readers[moving].state is AlertState.FIRING
    # Sent again (and the resolved one sent): marked on copies.
    sent = to_send(work, 151_000, 60_000, 60_000)
    assert sorted(a.labels for a in sent) == [steady, moving]
    assert not any(a is readers[a.labels] for a in sent)
    assert held() == seen


@given(alert_rounds.courses([60_000, 60_000, 16 * 60_000]))
def test_alerts_stepped_together_move_as_each_alone(course: alert_rounds.Course) -> None:
    """An alert's course depends on its own series alone: four stepped (and sent) in one
    map end each round as each stepped alone (values that go, come back, move, turn -0;
    gaps beyond the retention of resolved alerts)."""
    for_ms, keep_ms = course.for_ms, course.keep_ms
    keys = alert_rounds.KEYS
    together: dict = {}
    alone: list[dict] = [{} for _ in keys]
    for ts, found, send in course.timed():
        step(together, found, ts, for_ms, keep_ms)
        for k, own in zip(keys, alone, strict=True):
            step(own, {k: found[k]} if k in found else {}, ts, for_ms, keep_ms)
        if send:
            sent = to_send(together, ts, 60_000, 60_000)
            sent_alone = [a for own in alone for a in to_send(own, ts, 60_000, 60_000)]
            assert sorted(a.labels for a in sent) == sorted(a.labels for a in sent_alone)
        merged = {k: a for own in alone for k, a in own.items()}
        assert {k: vars(a) for k, a in together.items()} == {k: vars(a) for k, a in merged.items()}
