"""Prometheus' own promqltest files, run through foresight's evaluator."""

from __future__ import annotations

from pathlib import Path

import pytest

from promql.promqltest import run_file, run_text

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "promql" / "testdata"
# Marked experimental upstream; counted separately.
EXPERIMENTAL = frozenset(
    {
        "duration_expression",
        "extended_vectors",
        "fill-modifier",
        "info",
        "limit",
        "start_timestamps",
        "type_and_unit",
    }
)
if not TESTDATA.is_dir():
    raise FileNotFoundError(f"promqltest files not found at {TESTDATA} (shared/data/promql)")
STABLE = sorted(p.stem for p in TESTDATA.glob("*.test") if p.stem not in EXPERIMENTAL)


@pytest.mark.parametrize("name", STABLE)
def test_stable_file_passes(name: str) -> None:
    report = run_file(TESTDATA / f"{name}.test")
    ran = report.passed + report.failed
    assert ran > 0 or report.skipped > 0
    failures = "\n".join(f"{f.line}: {f.query}: {f.message}" for f in report.failures)
    assert report.passed >= 0.98 * ran, failures


@pytest.mark.parametrize("name", sorted(EXPERIMENTAL))
def test_experimental_file_runs_to_the_end(name: str) -> None:
    path = TESTDATA / f"{name}.test"
    assert path.exists(), f"test data missing: {path}"
    report = run_file(path)
    assert report.passed + report.failed + report.skipped > 0


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
