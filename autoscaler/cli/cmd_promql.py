"""``foresight promql``: run promqltest files, and query a store's data directory or, with
``--url``, a running foresight or any server that speaks Prometheus' HTTP API.

Both ways a query's answer is Prometheus' API JSON (``--output json`` prints it) from which the
table is printed, so the two outputs look the same whichever answered.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from autoscaler.cli.base import Command, CommandError
from autoscaler.cli.cmd_silence import TOKEN_ENV, _token
from autoscaler.cli.cmd_store import parse_time
from autoscaler.settings import Settings

# Beyond Prometheus' own default query timeout (2 minutes), so that the server's error arrives.
_HTTP_TIMEOUT_SECONDS = 130.0


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
        help="evaluate a PromQL expression over the store, or ask a server with --url",
        description="Evaluate EXPR at --time (instant query, default: now) or over "
        "--start/--end/--step (range query) against the store in the configured data "
        "directory, which must not be open in another process; or, with --url, ask a running "
        "foresight (its API port) or any Prometheus-compatible server, sending the bearer "
        f"token of --token-file (or ${TOKEN_ENV}).",
    )
    query.add_argument("expr", metavar="EXPR")
    query.add_argument("--time", type=parse_time, help="unix seconds or RFC 3339")
    query.add_argument("--start", type=parse_time, help="unix seconds or RFC 3339")
    query.add_argument("--end", type=parse_time, help="unix seconds or RFC 3339")
    query.add_argument("--step", type=float, default=60.0, help="seconds (default 60)")
    query.add_argument(
        "--output", choices=("table", "json"), default="table", help="table or Prometheus API JSON"
    )
    query.add_argument(
        "--url",
        help="query this server's /api/v1 instead of the data directory, e.g. "
        "http://127.0.0.1:8081 (foresight's API port) or a Prometheus",
    )
    query.add_argument(
        "--token-file",
        metavar="FILE",
        type=Path,
        help=f"with --url: file holding the bearer token to send (default: ${TOKEN_ENV})",
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
    ranged = args.start is not None or args.end is not None
    if ranged and (args.start is None or args.end is None):
        raise CommandError("a range query needs both --start and --end")
    body = _ask_server(args, ranged) if args.url else _evaluate(args, settings, ranged)
    for note in [*body.get("warnings", []), *body.get("infos", [])]:
        print(note, file=sys.stderr)
    if args.output == "json":
        json.dump(body, sys.stdout)
        print()
    else:
        _print_table(body["data"])
    return 0


def _evaluate(args: argparse.Namespace, settings: Settings, ranged: bool) -> dict[str, Any]:
    """The answer of the store in the data directory, as the API would give it."""
    from autoscaler.forecast.query import ModelForecaster  # noqa: PLC0415
    from promql import Engine, PromQLError  # noqa: PLC0415
    from queryapi.encode import query_data, success  # noqa: PLC0415
    from runtime.clock import RealClock  # noqa: PLC0415
    from tsdb import Store, StoreError  # noqa: PLC0415

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
    data, _ = query_data(result)
    notes = result.annotations
    answer: dict[str, Any] = json.loads(success(data, notes.warnings, notes.infos))
    return answer


def _ask_server(args: argparse.Namespace, ranged: bool) -> dict[str, Any]:
    """The answer of the server at ``--url``: a form POST as Prometheus' own clients send,
    GET where the server does not take POST (405)."""
    import httpx  # noqa: PLC0415

    from queryapi.encode import timestamp_text  # noqa: PLC0415

    form = {"query": args.expr}
    if ranged:
        path = "query_range"
        form |= {
            "start": timestamp_text(args.start),
            "end": timestamp_text(args.end),
            "step": f"{args.step:g}",
        }
    else:
        path = "query"
        if args.time is not None:
            form["time"] = timestamp_text(args.time)
    url = f"{args.url.rstrip('/')}/api/v1/{path}"
    token = _token(args)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(headers=headers, timeout=_HTTP_TIMEOUT_SECONDS) as client:
            response = client.post(url, data=form)
            if response.status_code == 405:
                response = client.get(url, params=form)
    except httpx.HTTPError as e:
        raise CommandError(f"cannot reach {url}: {e}") from e
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("status") != "success":
        detail = (
            f"{body.get('errorType', '')}: {body.get('error', '')}"
            if isinstance(body, dict)
            else response.text[:200].strip()
        )
        hint = (
            ""
            if token or response.status_code != 401
            else f" (give --token-file or set {TOKEN_ENV})"
        )
        raise CommandError(f"{url}: {response.status_code} {detail}{hint}")
    return body


def _num(text: str) -> str:
    """A value of the API's JSON as the table prints it."""
    v = float(text)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v) if v != int(v) or abs(v) >= 1e21 else str(int(v))


def _print_table(data: dict[str, Any]) -> None:
    from tsdb.labels import format_labels  # noqa: PLC0415

    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        print(_num(result[1]))
        return
    if kind == "string":
        print(result[1])
        return
    rows = []
    for item in result:
        labels = format_labels(tuple(sorted(item["metric"].items())))
        for at, value in item["values"] if "values" in item else [item["value"]]:
            rows.append((labels, f"{float(at):.3f}", _num(value)))
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
    "store's data directory, or asks a running foresight or Prometheus with --url.",
    add_arguments=_add_arguments,
    run=_run,
)
