"""What a ``foresight`` subcommand is, and the errors it may raise."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Protocol

from autoscaler.settings import Settings


class CommandError(Exception):
    """A failure the user can act on; printed as one line, exit code 1."""


class Runner(Protocol):
    def __call__(self, args: argparse.Namespace, settings: Settings) -> int: ...


class ArgumentAdder(Protocol):
    def __call__(self, parser: argparse.ArgumentParser) -> None: ...


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one-line help, longer description, arguments and body.

    Heavy imports belong inside ``run`` so that ``foresight --help`` stays fast.
    """

    name: str
    help: str
    description: str
    add_arguments: ArgumentAdder
    run: Runner
