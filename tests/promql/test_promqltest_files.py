"""Prometheus' own promqltest files, run through foresight's evaluator."""

from __future__ import annotations

import pytest

from promql.promqltest import run_file, run_text
from tests.support.external import require_data

# (passed, failed, skipped) of every file of Prometheus 3.14's promql/promqltest/testdata, as
# foresight runs them: stable files pass every case they run (826 passed, 828 skipped for
# native histograms); files marked experimental upstream need syntax promql-parser does not
# parse yet. A change in any count, better or worse, is a change to look at and write here.
STABLE = {
    "aggregators": (125, 0, 35),
    "collision": (2, 0, 0),
    "functions": (323, 0, 108),
    "histograms": (93, 0, 92),
    "literals": (25, 0, 0),
    "name_label_dropping": (30, 0, 0),
    "native_histograms": (3, 0, 519),
    "operators": (142, 0, 72),
    "range_queries": (16, 0, 2),
    "selectors": (31, 0, 0),
    "staleness": (17, 0, 0),
    "trig_functions": (19, 0, 0),
}
EXPERIMENTAL = {
    "duration_expression": (8, 51, 0),
    "extended_vectors": (30, 90, 49),
    "fill-modifier": (6, 40, 0),
    "info": (0, 52, 1),
    "limit": (0, 1, 36),
    "start_timestamps": (0, 29, 7),
    "type_and_unit": (43, 15, 0),
}
COUNTS = STABLE | EXPERIMENTAL


def test_the_table_covers_every_file() -> None:
    folder = require_data("promql/testdata")
    files = {p.stem for p in folder.glob("*.test")}
    assert files == set(COUNTS), (
        f"{folder}: no recorded counts for {sorted(files - set(COUNTS))}, "
        f"recorded but absent {sorted(set(COUNTS) - files)}"
    )


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_file_counts_are_exactly_as_recorded(name: str) -> None:
    report = run_file(require_data(f"promql/testdata/{name}.test"))
    got = (report.passed, report.failed, report.skipped)
    failures = "\n".join(f"{f.line}: {f.query}: {f.message}" for f in report.failures)
    assert got == COUNTS[name], (
        f"{name}.test: (passed, failed, skipped) {got}, recorded {COUNTS[name]}\n{failures}"
    )
    # A failure in a stable file is a regression, never a new count to record.
    assert name not in STABLE or report.failed == 0, f"{name}.test:\n{failures}"


def test_native_histogram_cases_are_skipped_never_passed() -> None:
    report = run_text(
        "load 1m\n"
        "  h {{schema:0 sum:1 count:1}}x3\n"
        "  f 1 2 3\n\n"
        "eval instant at 2m h\n"
        '  {__name__="h"} {{schema:0 sum:1 count:1}}\n\n'
        "eval instant at 2m f\n"
        "  f 3\n",
        "inline",
    )
    assert (report.passed, report.failed, report.skipped) == (1, 0, 1)


def test_a_failed_case_shows_expected_and_got() -> None:
    report = run_text("load 1m\n  f 1 2 3\n\neval instant at 2m f\n  f 4\n", "inline")
    assert report.failed == 1
    assert "expected [4.0], got [3.0]" in report.failures[0].message


def test_expect_fail_with_exact_message() -> None:
    text = (
        "load 5m\n"
        '  dup{label="alpha"} 1\n'
        '  dup{label="beta"} 2\n'
        "  one 3\n\n"
        "eval instant at 0m one > on() dup\n"
        "  expect fail msg: found duplicate series for the match group {} on the right "
        'hand-side of the operation: [{__name__="dup", label="alpha"}, {__name__="dup", '
        'label="beta"}];many-to-many matching not allowed: matching labels must be unique on '
        "one side\n"
    )
    assert run_text(text, "inline").passed == 1


def test_a_bad_command_fails_with_its_line_and_the_file_goes_on() -> None:
    text = (
        "load 1m\n  f 1 2 3\n\n"
        "eval instant at 2m f\n  f 3\n\n"
        "load 1m\n  g ss(a, b)\n\n"
        "eval instant at 2m g\n  g 1\n\n"
        "frobnicate now\n\n"
        "clear\n\n"
        "load 1m\n  h 7\n\n"
        "eval instant at 0m h\n  h 7\n"
    )
    report = run_text(text, "inline")
    assert (report.passed, report.failed, report.skipped) == (2, 3, 0)
    assert [(f.line, f.message.split(":")[0]) for f in report.failures] == [
        (7, "cannot load"),
        (10, "not run"),
        (13, "unknown command"),
    ]


def test_annotations_match_with_or_without_their_position() -> None:
    text = (
        'load 1m\n  b{le="1"} 1 2\n  b{le="+Inf"} 2 4\n\n'
        "eval instant at 1m histogram_quantile(2, b)\n"
        "  expect warn msg: PromQL warning: quantile value should be between 0 and 1, got 2\n"
        "  {} +Inf\n\n"
        "eval instant at 1m histogram_quantile(2, b)\n"
        "  expect warn msg: PromQL warning: quantile value should be between 0 and 1, got 2 "
        "(1:1)\n"
        "  {} +Inf\n"
    )
    report = run_text(text, "inline")
    assert (report.passed, report.failed) == (2, 0), report.failures
