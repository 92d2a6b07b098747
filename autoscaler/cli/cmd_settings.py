"""``foresight settings``: show the effective settings, or the reference of all of them."""

from __future__ import annotations

import argparse
import json

from autoscaler.cli.base import Command
from autoscaler.settings import Settings, iter_settings_reference
from runtime.redact import redact_settings


def settings_reference_markdown() -> str:
    """The settings reference as a Markdown table (the README embeds it)."""
    rows = ["| environment variable | type | default | meaning |", "|---|---|---|---|"]
    for env, type_name, default, description in iter_settings_reference():
        rows.append(f"| `{env}` | {type_name} | {default} | {description} |")
    return "\n".join(rows) + "\n"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference",
        action="store_true",
        help="print every setting with its type, default and meaning (Markdown)",
    )


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.reference:
        print(settings_reference_markdown(), end="")
    else:
        print(json.dumps(redact_settings(settings.model_dump(mode="json")), indent=2))
    return 0


COMMAND = Command(
    name="settings",
    help="show the effective settings (secrets masked) or the reference",
    description="Print the settings foresight would run with, after the config file, "
    "environment and options are applied. Secrets, credential headers (Authorization...) "
    "and passwords or tokens in URLs are shown as '**********'.",
    add_arguments=_add_arguments,
    run=_run,
)
