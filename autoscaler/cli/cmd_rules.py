"""``foresight rules``: check rule files and run their unit tests (promtool's formats)."""

from __future__ import annotations

import argparse
from pathlib import Path

from autoscaler.cli.base import Command
from autoscaler.settings import Settings


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="validate rule files",
        description="Check Prometheus rule files (fields, durations, PromQL, templates). "
        "Errors name file:line:col. Exit code 1 when a file is invalid.",
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    test = sub.add_parser(
        "test",
        help="run rule unit tests in the `promtool test rules` format",
        description="Run `promtool test rules` files with Prometheus 3 semantics. Prints "
        "`Unit Testing:  FILE` then SUCCESS or FAILED with each failure. Exit code 1 when a "
        "test failed.",
    )
    test.add_argument("files", nargs="+", type=Path, metavar="FILE")
    test.add_argument("--run", metavar="REGEX", help="only test groups whose name matches")


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.rules_command == "check":
        return _check(args.files)
    return _test(args.files, args.run, settings)


def _check(files: list[Path]) -> int:
    from alerts.rules.errors import RuleFileErrors  # noqa: PLC0415
    from alerts.rules.loader import expand_paths, load_file  # noqa: PLC0415

    failed = False
    for path in expand_paths(files):
        print(f"Checking {path}")
        try:
            groups = load_file(path)
        except RuleFileErrors as e:
            failed = True
            print("  FAILED:")
            print(e)
            print()
            continue
        print(f"  SUCCESS: {sum(len(g.rules) for g in groups)} rules found")
        print()
    return 1 if failed else 0


def _test(files: list[Path], run: str | None, settings: Settings) -> int:
    from alerts.rules.unittest import report, run_file  # noqa: PLC0415
    from autoscaler.forecast.query import ModelForecaster  # noqa: PLC0415

    forecaster = ModelForecaster.from_settings(settings)
    failed = False
    for path in files:
        result = run_file(path, run, settings.promql, forecaster)
        print(report(result))
        failed = failed or not result.ok
    return 1 if failed else 0


COMMAND = Command(
    name="rules",
    help="check and unit-test Prometheus rule files",
    description="`rules check FILE...` validates rule files; `rules test FILE...` runs tests in "
    "the `promtool test rules` format.",
    add_arguments=_add_arguments,
    run=_run,
)
