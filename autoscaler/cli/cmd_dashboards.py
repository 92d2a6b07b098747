"""``foresight dashboards``: write the Grafana dashboards as JSON files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autoscaler.cli.base import Command, CommandError
from autoscaler.settings import Settings


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory to write foresight-<name>.json into (created if missing)",
    )
    parser.add_argument(
        "--currency",
        help="ISO 4217 code of the cost panels' amounts (default: the cost.currency setting)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="also run the structural checks (grid, units, data sources, PromQL) and fail "
        "on any problem",
    )


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from dashboards import build_all, write_all  # noqa: PLC0415
    from dashboards.lint import problems  # noqa: PLC0415

    currency = args.currency or settings.cost.currency
    if args.check:
        found = [p for name, data in build_all(currency).items() for p in problems(name, data)]
        if found:
            raise CommandError(f"{len(found)} problems:\n  " + "\n  ".join(found))
    try:
        written = write_all(args.out, currency)
    except OSError as e:
        raise CommandError(f"{args.out}: {e.strerror}") from e
    for path in written:
        print(path)
    print(f"wrote {len(written)} dashboards to {args.out}", file=sys.stderr)
    return 0


COMMAND = Command(
    name="dashboards",
    help="write the Grafana dashboards as JSON",
    description="Render foresight's Grafana dashboards (cluster, nodes, workloads, "
    "autoscaler, alerts, cost) as Grafana 11 JSON, one file per dashboard, for provisioning "
    "or import. They read a Prometheus data source chosen in the dashboard.",
    add_arguments=_add_arguments,
    run=_run,
)
