"""``foresight demo``: foresight against the built-in simulated cluster, on a virtual clock."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from autoscaler.cli.base import Command, CommandError
from autoscaler.settings import Settings
from runtime.gil import favour_event_loop


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("demo-out"),
        metavar="DIR",
        help="where summary.json, report.png, events.jsonl and the store go (default: %(default)s)",
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=24.0,
        metavar="H",
        help="simulated hours to replay (default: %(default)s)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="a `timestamp,value` CSV that drives the frontend's load instead of the "
        "generated daily pattern",
    )
    source.add_argument(
        "--scenario",
        type=Path,
        metavar="FILE",
        help="a scenario YAML (nodes, workloads and their load, faults, and the "
        "PredictiveAutoscalers under `autoscalers:`) to run instead of the built-in one; "
        "same outputs, and its horizontally scaled Deployments are scored against the HPA "
        "(example: examples/scenarios/)",
    )
    parser.add_argument(
        "--keep-serving",
        action="store_true",
        help="after the summary, keep the simulated cluster's API up (time stopped) for "
        "kubectl, and serve foresight's API (Prometheus' query API for Grafana, silences, "
        "rules, alerts; token in DIR/api-token) and /metrics on loopback, until Ctrl-C",
    )


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    w = sys.stdout.write
    w("\n== foresight demo: summary ==\n")
    w(
        f"{summary['simulated_hours']:g} simulated hours in {summary['wall_seconds']:g} s; "
        f"{summary['scaling_actions']} scaling actions, {summary['resize_actions']} resizes\n\n"
    )
    w(
        "foresight and the HPA both replayed on the run's load every 15 s, as `foresight "
        "backtest` does (bench.parity checks the replay against the live service);\n"
        "foresight live: this run's own pods, which also met what a replay does not model "
        "(a node failure)\n\n"
    )
    w(f"{'workload':<18} {'':>14} {'SLO violations':>15} {'replica-hours':>14} {'actions':>8}\n")
    for name, row in summary["workloads"].items():
        if "violation_pct" not in row:
            continue
        w(f"{name:<18}")
        for label, prefix in (("foresight", ""), ("HPA 70 %", "hpa_"), ("foresight live", "live_")):
            w(
                f"{'' if label == 'foresight' else ' ' * 18} {label:>14} "
                f"{row[prefix + 'violation_pct']:>14.2f}% "
                f"{row[prefix + 'cost_replica_hours']:>14.1f} "
                f"{row[prefix + 'scaling_actions']:>8}\n"
            )
    for label, prefix in (("foresight", ""), ("HPA 70 %", "hpa_"), ("foresight live", "live_")):
        w(
            f"{'all' if label == 'foresight' else '':<18} {label:>14} "
            f"{summary[prefix + 'violation_pct']:>14.2f}% "
            f"{summary[prefix + 'cost_replica_hours']:>14.1f}\n"
        )
    w("\n")
    w("over the run, per workload an autoscaler targets:\n")
    for name, row in summary["workloads"].items():
        replicas = row.get("replicas", {})
        requests = ", ".join(
            f"{container} {resource} {_shown(resource, r['min'])}-{_shown(resource, r['max'])}"
            for container, by_resource in row.get("requests", {}).items()
            for resource, r in by_resource.items()
        )
        w(
            f"  {name}: {replicas.get('min', 0)}-{replicas.get('max', 0)} replicas, "
            f"{row.get('resizes', 0)} resizes; requests {requests or '-'}\n"
        )
    kills = sum(summary["oom_kills"].values())
    w(f"OOM kills: {kills}\n")
    if summary["recommendations"]:
        w("container requests recommended:\n")
        for rec in summary["recommendations"]:
            shown = _shown(rec["resource"], rec["request"])
            w(f"  {rec['autoscaler']} {rec['container']} {rec['resource']}: {shown}\n")
    w(
        f"\nalerts: {summary['alerts_delivered']} delivered in "
        f"{summary['notifications_delivered']} webhook notifications to the demo's receiver\n"
    )
    for name, count in summary["alerts_firing_by_name"].items():
        w(f"  {name}: {count} firing\n")
    cost = summary.get("cost")
    if cost:
        w(
            f"\ncost: {cost['currency']} {cost['cluster_hourly']:.2f}/h for the cluster "
            f"({cost['idle_hourly']:.2f}/h idle); the recommendations would save "
            f"{cost['savings_monthly']:.0f}/month\n"
        )
    w(
        f"\nwritten to {out}/: summary.json, report.png, events.jsonl, alerts.jsonl, "
        "dashboards/ (Grafana JSON), data/ (the store; `foresight cost --data-dir`)\n"
    )


def _shown(resource: str, value: float) -> str:
    if resource == "cpu":
        return f"{value * 1000:.0f}m"
    if resource == "memory":
        return f"{value / 2**20:.0f}Mi"
    return f"{value:g}"


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.hours <= 0:
        raise CommandError(f"--hours must be > 0, got {args.hours}")
    for flag, path in (("--trace", args.trace), ("--scenario", args.scenario)):
        if path is not None and not path.is_file():
            raise CommandError(f"{flag} {path}: no such file")
    # Imported here: the simulator is a development tool, not part of the service's start-up.
    from autoscaler.demo.run import DemoOptions, run_demo  # noqa: PLC0415
    from simulator.errors import SimulatorError  # noqa: PLC0415
    from tsdb import StoreLocked  # noqa: PLC0415

    if getattr(args, "log_level", None) is None:
        # The demo prints its own progress; the service's INFO lines would bury it.
        logging.getLogger().setLevel(logging.WARNING)

    def progress(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    options = DemoOptions(
        out=args.out,
        hours=args.hours,
        trace=args.trace,
        scenario=args.scenario,
        progress=progress,
        keep_serving=args.keep_serving,
    )
    favour_event_loop()
    try:
        summary = asyncio.run(run_demo(options))
    except (SimulatorError, StoreLocked) as e:
        raise CommandError(str(e)) from e
    _print_summary(summary, args.out)
    return 0


COMMAND = Command(
    name="demo",
    help="run foresight against a built-in simulated cluster",
    description="Start the simulator's default scenario (a web shop with a daily cycle and a "
    "flash crowd, a batch CronJob, a memory-leaking worker, a node failure) on loopback, run "
    "the whole service against it on a virtual clock (a simulated day in a few minutes), and "
    "report the scaling actions, SLO violations and cost of foresight against the Kubernetes "
    "HPA, both replayed on the run's load in the backtest's world, beside the live run's own. "
    "With --scenario FILE, any scenario runs the same way: its nodes, "
    "workloads, load, faults and the PredictiveAutoscalers it declares; the summary gives, "
    "per targeted workload, its resizes and its replica and request ranges over the run. "
    "While it runs: kubectl --kubeconfig DIR/kubeconfig get pas -A.",
    add_arguments=_add_arguments,
    run=_run,
)
