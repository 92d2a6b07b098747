"""Scaling benchmark: ``python -m bench.scaling DIR [--startup 30 60 120 300] [--traces N]``.

Replays the traces in DIR through foresight with ``naive`` and with every forecast model
registered beyond the ones foresight has long had (looked up in the registry at run time),
and through the peers (``hpa``, ``ehpa``, ``phpa-hw``, ``phpa-lin``, ``hpa-on-forecast`` at
each target) in the world model of ``docs/architecture.md``, and prints per pod startup one
line per policy: mean violating steps %, geometric-mean cost vs the oracle, mean actions per
day. Then, per model, whether it beats every competitor (the peers but hpa-on-forecast, which
is foresight's own forecast): fewer violations than each one's best setting (its fewest
violations) at lower cost than the cheapest of those best settings, and, read more strictly,
than the cheapest setting of any. Progress and CPU seconds go to stderr; a full run takes
minutes per startup (``--traces``/``--match`` take a subset; ``--jobs N`` replays N traces at
once, and the CPU seconds include the workers').
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from autoscaler.backtest.frontier import Frontier, SweepPoint, run_frontier
from autoscaler.backtest.trace import trace_files
from autoscaler.backtest.verdict import verdicts as judge
from autoscaler.backtest.world import WorldConfig
from autoscaler.cli.cmd_backtest import workers
from autoscaler.forecast.registry import forecaster_names
from autoscaler.forecast.settings import ForecastSettings

__all__ = ["PEERS", "default_models", "format_lines", "main", "points", "verdicts"]

PEERS = ("hpa", "ehpa", "phpa-hw", "phpa-lin", "hpa-on-forecast")
DEFAULT_TARGETS = (0.5, 0.7, 0.9)
STARTUPS = (30.0, 60.0, 120.0, 300.0)
# Forecasters foresight shipped before the learned-model work; any other registered name is new.
ESTABLISHED = frozenset({"naive", "seasonal_naive", "holt_winters", "quantile_gbm"})


def default_models() -> list[str]:
    """``naive`` and every registered forecaster that is not an established one."""
    return ["naive", *(n for n in forecaster_names() if n not in ESTABLISHED)]


def points(
    models: Sequence[str], peers: Sequence[str], targets: Sequence[float]
) -> list[SweepPoint]:
    """foresight with each model at the default quantile, each peer at each target."""
    out: list[SweepPoint] = []
    for model in models:
        settings = ForecastSettings(model=model)
        name = f"foresight:{model}"
        out.append(SweepPoint(name, "quantile", settings.quantile, name, settings))
    for peer in peers:
        for t in targets:
            out.append(SweepPoint(peer, "target", t, f"{peer}@{t:g}", None))
    return out


def format_lines(frontier: Frontier) -> str:
    """One line per policy setting."""
    width = max(len(p.point.name) for p in frontier.points)
    head = f"{'policy':<{width}} {'viol%':>8} {'cost/oracle':>11} {'actions/day':>11}"
    lines = [head, "-" * len(head)]
    for p in frontier.points:
        a = p.aggregate
        lines.append(
            f"{p.point.name:<{width}} {a.violation_pct:>8.3f} {a.cost_vs_oracle:>11.3f} "
            f"{a.actions_per_day:>11.1f}"
        )
    return "\n".join(lines) + "\n"


def verdicts(frontier: Frontier) -> list[str]:
    """Per foresight model, its verdict against the competitors (see
    :mod:`autoscaler.backtest.verdict`)."""
    aggregates = {p.point.name: p.aggregate for p in frontier.points}
    models = [p.point.name for p in frontier.points if p.point.knob == "quantile"]
    return [v.line() for v in judge(aggregates, models)]


def _cpu_seconds() -> float:
    # This process and its finished workers (--jobs): run_frontier's pool ends with the run.
    own, workers = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def _progress(done: int, total: int, name: str) -> None:
    end = "\n" if done == total else ""
    sys.stderr.write(f"\r  {done}/{total} {name:<60}{end}")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__)
    parser.add_argument("dir", type=Path, help="folder of timestamp,value traces")
    parser.add_argument(
        "--startup", type=float, nargs="+", default=list(STARTUPS), help="pod startups, seconds"
    )
    parser.add_argument("--peak-replicas", type=int, default=20)
    parser.add_argument(
        "--traces", type=int, default=None, metavar="N", help="only the first N traces (sorted)"
    )
    parser.add_argument(
        "--match",
        nargs="+",
        default=None,
        metavar="TEXT",
        help="only traces whose file name contains one of the TEXTs",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="MODEL",
        help="forecast models for foresight (default: naive and every newly registered one)",
    )
    parser.add_argument("--peers", nargs="*", default=list(PEERS), metavar="PEER")
    parser.add_argument(
        "--targets", type=float, nargs="+", default=list(DEFAULT_TARGETS), metavar="T"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--jobs", type=workers, default=1, metavar="N", help="traces replayed at once (default 1)"
    )
    args = parser.parse_args(argv)
    paths = trace_files([args.dir])
    if args.match is not None:
        paths = [p for p in paths if any(m in p.name for m in args.match)]
    if args.traces is not None:
        paths = paths[: args.traces]
    models = args.models or default_models()
    sweep = points(models, args.peers, args.targets)
    print(f"{len(paths)} trace(s): {', '.join(p.stem for p in paths)}")
    summary: list[str] = []
    for startup in args.startup:
        began, cpu = time.perf_counter(), _cpu_seconds()
        config = WorldConfig(startup_seconds=startup, peak_replicas=args.peak_replicas)
        progress = None if args.quiet else _progress
        frontier = run_frontier(paths, config, sweep, progress, jobs=args.jobs)
        print(f"\n## startup {startup:.0f} s, peak {args.peak_replicas} replicas")
        print(format_lines(frontier), end="")
        for line in verdicts(frontier):
            summary.append(f"startup {startup:>4.0f} s: {line}")
            print(line)
        sys.stderr.write(
            f"startup {startup:.0f} s: {_cpu_seconds() - cpu:.0f} CPU-s, "
            f"{time.perf_counter() - began:.0f} s wall\n"
        )
        sys.stdout.flush()
    print("\n" + "\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
