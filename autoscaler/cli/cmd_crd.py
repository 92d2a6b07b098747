"""``foresight crd``: print the PredictiveAutoscaler CustomResourceDefinition."""

from __future__ import annotations

import argparse
import sys

from autoscaler.cli.base import Command
from autoscaler.settings import Settings


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options: the CRD is fixed by the model


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from autoscaler.resource.crd import crd_yaml  # noqa: PLC0415

    sys.stdout.write(crd_yaml())
    return 0


COMMAND = Command(
    name="crd",
    help="print the PredictiveAutoscaler CRD (kubectl apply -f -)",
    description="Print the CustomResourceDefinition of PredictiveAutoscaler, generated from "
    "the model the controller validates with: `foresight crd | kubectl apply -f -`.",
    add_arguments=_add_arguments,
    run=_run,
)
