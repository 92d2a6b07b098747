"""The registry of ``foresight`` subcommands, in the order ``--help`` lists them.

A part of foresight plugs its command in by adding a module ``autoscaler/cli/cmd_<name>.py``
that defines ``COMMAND`` and naming it in :data:`COMMAND_NAMES`.
"""

from __future__ import annotations

import importlib

from autoscaler.cli.base import Command

# The product's commands first, then those that help operate it.
COMMAND_NAMES: tuple[str, ...] = (
    "run",
    "demo",
    "backtest",
    "dashboards",
    "cost",
    "rules",
    "promql",
    "simulator",
    "crd",
    "settings",
    "store",
    "silence",
    "alerts",
)


def all_commands() -> list[Command]:
    """Every subcommand, in display order."""
    commands: list[Command] = []
    for name in COMMAND_NAMES:
        command = importlib.import_module(f"autoscaler.cli.cmd_{name}").COMMAND
        assert isinstance(command, Command)
        commands.append(command)
    return commands
