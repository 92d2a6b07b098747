"""Entry point of the ``foresight`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from autoscaler import __version__
from autoscaler.cli.base import CommandError
from autoscaler.cli.commands import all_commands
from autoscaler.logs import configure_logging
from autoscaler.settings import SettingsError, load_settings
from runtime.redact import redact_text

EPILOG = """\
Settings come from --config FILE (YAML), then FORESIGHT_* environment variables
(FORESIGHT_GROUP__FIELD, e.g. FORESIGHT_STORE__DATA_DIR), then command-line options.
Run 'foresight settings --reference' to list them all.
"""


class _Parser(argparse.ArgumentParser):
    """Usage errors print one line and exit with code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every registered subcommand."""
    parser = _Parser(
        prog="foresight",
        description="Predictive autoscaling, monitoring and alerting for Kubernetes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"foresight {__version__}")
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML settings file")
    parser.add_argument(
        "--log-format", choices=["text", "json"], help="log output format (default: text)"
    )
    parser.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="lowest level logged"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in all_commands():
        p = sub.add_parser(command.name, help=command.help, description=command.description)
        command.add_arguments(p)
        p.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``foresight`` with ``argv`` and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides: dict[str, dict[str, str]] = {}
    log_overrides = {
        k: v for k, v in (("format", args.log_format), ("level", args.log_level)) if v is not None
    }
    if log_overrides:
        overrides["log"] = log_overrides
    try:
        settings = load_settings(args.config, overrides)
    except SettingsError as e:
        sys.stderr.write(f"foresight: {e}\n")
        return 2
    configure_logging(settings.log.format, settings.log.level)
    try:
        return int(args._run(args, settings))
    except CommandError as e:
        sys.stderr.write(f"foresight {args.command}: {redact_text(str(e))}\n")
        return 1
    except KeyboardInterrupt:
        logging.getLogger("foresight").info("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
