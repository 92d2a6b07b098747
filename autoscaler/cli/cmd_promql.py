"""``foresight promql``: run promqltest files, and query a store's data directory."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from autoscaler.cli.base import Command, CommandError
from autoscaler.cli.cmd_store import parse_time
from autoscaler.settings import Settings


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="promql_command", metavar="ACTION", required=True)
    test = sub.add_parser(
        "test",
        help="run Prometheus promqltest files against foresight's evaluator",
        description="Run files in Prometheus' promqltest format (load, clear, eval, expect). "
        "Prints each file's passed/failed/skipped counts and its failed cases, then "
        "`N passed, M failed, K skipped`. Cases with native histograms are skipped. "
        "Exit code 1 when a case failed.",
    )
    test.add_argument("files", nargs="+", type=Path, metavar="FILE")
    test.add_argument("--quiet", "-q", action="store_true", help="only the counts")
    query = sub.add_parser(
        "query",
        help="evaluate a PromQL expression over the store's data directory",
        description="Evaluate EXPR at --time (instant query, default: now) or over "
        "--start/--end/--step (range query) against the store in the configured data "
        "directory, which must not be open in another process.",
    )
    query.add_argument("expr", metavar="EXPR")
    query.add_argument("--time", type=parse_time, help="unix seconds or RFC 3339")
    query.add_argument("--start", type=parse_time, help="unix seconds or RFC 3339")
    query.add_argument("--end", type=parse_time, help="unix seconds or RFC 3339")
    query.add_argument("--step", type=float, default=60.0, help="seconds (default 60)")
    query.add_argument(
        "--output", choices=("table", "json"), default="table", help="table or Prometheus API JSON"
    )


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.promql_command == "test":
        return _test(args, settings)
    return _query(args, settings)


def _test(args: argparse.Namespace, settings: Settings) -> int:
    from autoscaler.forecast.query import ModelForecaster  # noqa: PLC0415
    from promql.promqltest import run_file  # noqa: PLC0415

    forecaster = ModelForecaster.from_settings(settings)
    passed = failed = skipped = 0
    for path in args.files:
        try:
            report = run_file(path, settings.promql, forecaster)
        except OSError as e:
            raise CommandError(f"{path}: {e.strerror}") from e
        print(f"{path}: {report.passed} passed, {report.failed} failed, {report.skipped} skipped")
        if not args.quiet:
            for f in report.failures:
                print(f"  {path}:{f.line}: {f.query}\n      {f.message}")
        passed, failed, skipped = (
            passed + report.passed,
            failed + report.failed,
            skipped + report.skipped,
        )
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


def _query(args: argparse.Namespace, settings: Settings) -> int:
    from autoscaler.forecast.query import ModelForecaster  # noqa: PLC0415
    from promql import Engine, PromQLError  # noqa: PLC0415
    from runtime.clock import RealClock  # noqa: PLC0415
    from tsdb import Store, StoreError  # noqa: PLC0415

    ranged = args.start is not None or args.end is not None
    if ranged and (args.start is None or args.end is None):
        raise CommandError("a range query needs both --start and --end")
    try:
        clock = RealClock()
        store = Store(settings.store, clock)
    except StoreError as e:
        raise CommandError(str(e)) from e
    with store:
        engine = Engine(store, settings.promql, ModelForecaster.from_settings(settings))
        try:
            if ranged:
                result = engine.range(args.expr, args.start, args.end, int(args.step * 1000))
            else:
                at = args.time if args.time is not None else int(clock.now() * 1000)
                result = engine.instant(args.expr, at)
        except PromQLError as e:
            raise CommandError(str(e)) from e
    for w in [*result.annotations.warnings, *result.annotations.infos]:
        print(w, file=sys.stderr)
    if args.output == "json":
        json.dump(_api_json(result), sys.stdout)
        print()
    else:
        _print_table(result)
    return 0


def _num(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v) if v != int(v) or abs(v) >= 1e21 else str(int(v))


def _api_json(result: Any) -> dict[str, Any]:
    if result.type in ("scalar", "string"):
        value = _num(result.scalar) if result.type == "scalar" else result.string
        data: Any = [result.timestamp_ms / 1000, value]
    elif result.type == "vector":
        data = [
            {"metric": dict(s.labels), "value": [result.timestamp_ms / 1000, _num(s.values[0])]}
            for s in result.series
        ]
    else:
        data = [
            {
                "metric": dict(s.labels),
                "values": [
                    [t / 1000, _num(v)]
                    for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True)
                ],
            }
            for s in result.series
        ]
    out: dict[str, Any] = {"status": "success", "data": {"resultType": result.type, "result": data}}
    if result.annotations.warnings:
        out["warnings"] = result.annotations.warnings
    if result.annotations.infos:
        out["infos"] = result.annotations.infos
    return out


def _print_table(result: Any) -> None:
    from tsdb.labels import format_labels  # noqa: PLC0415

    if result.type == "scalar":
        print(_num(result.scalar))
        return
    if result.type == "string":
        print(result.string)
        return
    rows = []
    for s in result.series:
        for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True):
            rows.append((format_labels(s.labels), f"{t / 1000:.3f}", _num(v)))
    if not rows:
        print("(no data)")
        return
    width = max(len(r[0]) for r in rows)
    print(f"{'SERIES':<{width}}  {'TIME':>14}  VALUE")
    for series, at, value in rows:
        print(f"{series:<{width}}  {at:>14}  {value}")


COMMAND = Command(
    name="promql",
    help="run PromQL test files, or query the store with PromQL",
    description="`promql test FILE...` runs files in Prometheus' promqltest format and prints "
    "`N passed, M failed, K skipped`; `promql query EXPR` evaluates an expression over the "
    "store's data directory.",
    add_arguments=_add_arguments,
    run=_run,
)
