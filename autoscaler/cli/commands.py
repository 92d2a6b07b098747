"""The registry of ``foresight`` subcommands, in the order ``--help`` lists them.

A part of foresight plugs its command in by adding a module ``autoscaler/cli/cmd_<name>.py``
that defines ``COMMAND``; a name listed here whose module does not exist yet answers that it
is not in this build.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

from autoscaler.cli.base import Command, CommandError
from autoscaler.settings import Settings

# (name, one-line help, description) of every subcommand.
_PLANNED: tuple[tuple[str, str, str], ...] = (
    (
        "run",
        "run the autoscaler service (collect, forecast, scale, alert)",
        "Run foresight as a service: collectors, store, forecasting, the controller that scales "
        "PredictiveAutoscaler targets, the alert engine, and the /metrics, /healthz and /readyz "
        "endpoints.",
    ),
    (
        "demo",
        "run foresight against a built-in simulated cluster",
        "Start a simulated cluster on loopback, run foresight against it at high speed, and "
        "report what it forecast, scaled and alerted.",
    ),
    (
        "backtest",
        "replay a load trace through the scaling policies and score them",
        "Replay a `timestamp,value` trace through foresight's policies and the reference "
        "policies, and print SLO and cost figures.",
    ),
    (
        "dashboards",
        "write the Grafana dashboards as JSON",
        "Render foresight's Grafana dashboards (cluster, nodes, workloads, autoscaler, alerts, "
        "cost) to JSON files.",
    ),
    (
        "cost",
        "report what the cluster costs and could save",
        "Report hourly and monthly cost by namespace, workload and resource, idle cost, and "
        "projected savings.",
    ),
    (
        "rules",
        "check and unit-test Prometheus rule files",
        "`rules check FILE...` validates rule files; `rules test FILE...` runs tests in the "
        "`promtool test rules` format.",
    ),
    (
        "promql",
        "run PromQL test files against foresight's evaluator",
        "`promql test FILE...` runs files in Prometheus' promqltest format and prints "
        "`N passed, M failed`.",
    ),
    (
        "simulator",
        "serve a simulated Kubernetes cluster on loopback",
        "`simulator serve` serves a Kubernetes API subset and kubelet endpoints driven by "
        "traces, and writes a kubeconfig for kubectl and the kubernetes client.",
    ),
)

# Subcommands that are not part of the product story above but help operate it.
_EXTRA: tuple[str, ...] = ("crd", "settings", "store", "silence", "alerts")


def _not_built(name: str) -> Command:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(args: argparse.Namespace, settings: Settings) -> int:
        raise CommandError(f"'{name}' is not available in this build of foresight yet")

    help_text, description = next((h, d) for n, h, d in _PLANNED if n == name)
    return Command(name, help_text, description, add_arguments, run)


def all_commands() -> list[Command]:
    """Every subcommand, built or not, in display order."""
    commands: list[Command] = []
    for name in [n for n, _, _ in _PLANNED] + list(_EXTRA):
        module = f"autoscaler.cli.cmd_{name}"
        if importlib.util.find_spec(module) is not None:
            commands.append(importlib.import_module(module).COMMAND)
        elif name in _EXTRA:
            continue
        else:
            commands.append(_not_built(name))
    return commands
