"""Fuzzing the promqltest reader: a malformed command is reported as a failure at its line and
the file goes on; ``run_text`` itself never raises."""

from __future__ import annotations

from hypothesis import example, given, settings

from promql.promqltest import run_text
from tests.fuzz.mutations import texts_near

SCRIPT = """\
load 5m
  http_requests{job="api", instance="0"} 0+10x10
  http_requests{job="api", instance="1"} 0+20x10 _ stale

eval instant at 50m sum by (job) (http_requests)
  {job="api"} 300

eval range from 0 to 10m step 5m rate(http_requests[10m])
  {job="api", instance="0"} _ 0.016666666666666666 0.03333333333333333
  {job="api", instance="1"} _ 0.03333333333333333 0.06666666666666667

eval_fail instant at 0m sum(
  expected_fail_regexp unclosed

clear

eval instant at 0m 1 + 1
  2
"""


@settings(max_examples=250, deadline=None, derandomize=True, database=None)
@given(texts_near(SCRIPT))
@example("eval instant at 0m 1\n  expected_fail_message\n")  # once an IndexError
@example("eval instant at 1e999 1\n")  # once an OverflowError
@example("eval instant at nan 1\n")  # once a bare ValueError
@example('load 5m\n  m{a="\\')  # the series notation once indexed past the end
@example("load 5m\n  m{a")
@example("load 5m\n  m{a=b} 1")
def test_run_text_reports_bad_commands_at_their_line(text: str) -> None:
    report = run_text(text, "fuzz.test")
    lines = text.splitlines()
    assert report.failed == len(report.failures)
    for failure in report.failures:
        assert 1 <= failure.line <= len(lines), failure
        assert failure.message


def test_the_seed_passes() -> None:
    report = run_text(SCRIPT, "seed.test")
    assert (report.passed, report.failures) == (4, [])
