"""Fuzzing the rule-file reader and the promtool rule-test reader: a malformed file is only
ever reported (RuleFileErrors naming file:line:col; a FileResult with errors), never a crash."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alerts.rules.errors import RuleFileErrors
from alerts.rules.loader import load_text
from alerts.rules.unittest import run_file
from tests.fuzz.mutations import texts_near

RULES = """\
groups:
- name: web
  interval: 30s
  labels: {team: web}
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: Down
    expr: up == 0
    for: 1m
    keep_firing_for: 30s
    labels:
      severity: page
    annotations:
      summary: "{{ $labels.job }} is down ({{ $value | humanize }})"
"""
TEST = """\
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - series: 'up{job="a"}'
    values: '1 0 0 0'
  alert_rule_test:
  - eval_time: 3m
    alertname: Down
    exp_alerts:
    - exp_labels: {job: a, severity: page, team: web}
      exp_annotations: {summary: "a is down (0)"}
  promql_expr_test:
  - expr: job:up:sum
    eval_time: 1m
    exp_samples:
    - labels: 'job:up:sum{job="a", team="web"}'
      value: 0
"""
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None)


def _load(text: str) -> None:
    try:
        load_text(text, "rules.yml")
    except RuleFileErrors as e:
        assert e.errors
        assert all(str(x).startswith("rules.yml") for x in e.errors)


def test_the_seeds_are_valid(tmp_path: Path) -> None:
    assert [g.name for g in load_text(RULES, "rules.yml")] == ["web"]
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "test.yml").write_text(TEST)
    assert run_file(tmp_path / "test.yml").errors == []


@FUZZ
@given(texts_near(RULES))
@example("groups:\n- name: \x1f")  # once a bare yaml ReaderError (no mark)
def test_load_text_raises_only_rule_file_errors(text: str) -> None:
    _load(text)


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["groups", "name", "rules", "expr", "x"]), inner)
        ),
        max_leaves=12,
    )
)
def test_load_text_on_random_yaml_documents(doc: object) -> None:
    _load(yaml.safe_dump(doc))


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.sampled_from(["rules", "test"]), st.data())
def test_run_file_reports_every_problem(tmp_path: Path, which: str, data: st.DataObject) -> None:
    rules, test = (data.draw(texts_near(RULES)), TEST) if which == "rules" else (RULES, "")
    if which == "test":
        test = data.draw(texts_near(TEST))
    (tmp_path / "rules.yml").write_text(rules, encoding="utf-8", errors="surrogatepass")
    (tmp_path / "test.yml").write_text(test, encoding="utf-8", errors="surrogatepass")
    result = run_file(tmp_path / "test.yml")
    assert all(isinstance(e, str) and e for e in result.errors)
