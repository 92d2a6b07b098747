"""``foresight alerts outbox``: the notifications waiting to be delivered, and dead letters."""

from __future__ import annotations

import argparse
import json

from autoscaler.cli.base import Command
from autoscaler.settings import Settings


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    outbox = sub.add_parser(
        "outbox",
        help="list queued and dead-lettered notifications",
        description="Read the notification outbox in rules.state_dir (safe while foresight "
        "runs) and list what is still queued and what was given up on, with the last error.",
    )
    outbox.add_argument("--json", action="store_true", help="print JSON")


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.notify.model import rfc3339  # noqa: PLC0415
    from alerts.notify.outbox import read_outbox  # noqa: PLC0415

    found = read_outbox(settings.rules.state_dir)
    rows = [("queued", e) for e in found.pending.values()]
    rows += [("dead", e) for e in found.dead.values()]
    if args.json:
        out = [
            {
                "state": state,
                "id": e.id,
                "receiver": e.receiver,
                "groupKey": e.group_key,
                "queuedAt": rfc3339(e.created_ms),
                "lastError": e.last_error,
            }
            for state, e in rows
        ]
        print(json.dumps(out, indent=2))
        return 0
    print(f"{len(found.pending)} queued, {len(found.dead)} dead-lettered")
    for state, e in rows:
        error = f"  {e.last_error}" if e.last_error else ""
        print(f"{state:<6}  {e.id}  {rfc3339(e.created_ms)}  {e.receiver}  {e.group_key}{error}")
    return 0


COMMAND = Command(
    name="alerts",
    help="inspect the alert engine's notification outbox",
    description="`alerts outbox` lists queued and dead-lettered notifications.",
    add_arguments=_add_arguments,
    run=_run,
)
