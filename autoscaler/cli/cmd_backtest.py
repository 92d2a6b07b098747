"""``foresight backtest``: replay load traces through scaling policies and score them."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from autoscaler.cli.base import Command, CommandError
from autoscaler.settings import Settings

if TYPE_CHECKING:
    from autoscaler.backtest.world import WorldConfig
    from autoscaler.forecast.settings import ForecastSettings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``2h`` or ``7d``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 60, 60s, 15m, 7d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def workers(text: str) -> int:
    """A ``--jobs`` value: a whole number of processes, at least 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"not a number of processes (1 or more): {text!r}")
    return n


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from autoscaler.backtest.frontier import (  # noqa: PLC0415
        DEFAULT_FRONTIER_POLICIES,
        DEFAULT_QUANTILES,
        DEFAULT_TARGETS,
    )
    from autoscaler.backtest.policies import DEFAULT_POLICIES  # noqa: PLC0415

    parser.add_argument(
        "--trace",
        type=Path,
        nargs="+",
        action="extend",
        required=True,
        metavar="PATH",
        help="trace CSV (timestamp,value) or a folder of them; repeatable",
    )
    parser.add_argument("--startup", type=duration, default=60.0, help="pod startup (default 60s)")
    parser.add_argument(
        "--peak-replicas", type=int, default=20, help="replicas the trace's p99 needs (default 20)"
    )
    parser.add_argument(
        "--warmup",
        type=duration,
        default=None,
        help="history used for fitting, not scored (default 7d, or half the trace if shorter)",
    )
    parser.add_argument(
        "--policy",
        nargs="+",
        action="extend",
        metavar="NAME",
        help=f"policies to compare (default: {' '.join(DEFAULT_POLICIES)}). foresight:MODEL: "
        "foresight with that forecast model. Reference policies at target utilisation T in "
        "(0, 1]: hpa@T, the Kubernetes HPA; ehpa@T, Crane's Effective HPA (its DSP/FFT "
        "prediction of the next hour's peak as an extra HPA metric, with Crane's defaults); "
        "phpa-hw@T and phpa-lin@T, the Predictive Horizontal Pod Autoscaler with Holt-Winters "
        "or linear regression on the HPA's replica counts (its documented settings); "
        "hpa-on-forecast@T, a plain HPA whose only metric is foresight's forecast peak, as "
        "served to an HPA through the external metrics API. oracle and static are "
        "clairvoyant yardsticks",
    )
    parser.add_argument(
        "--model", default=None, help="forecast model for foresight (default: the setting)"
    )
    parser.add_argument("--quantile", type=float, default=None, help="forecast quantile")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="write a plot per trace (with --frontier: the frontier curves); needs the "
        "optional 'plots' extra (matplotlib)",
    )
    parser.add_argument(
        "--frontier",
        action="store_true",
        help="sweep each policy's knob and print violations against cost at every point: "
        "the quantile for foresight and foresight:MODEL, the target T for hpa, ehpa, "
        "phpa-hw, phpa-lin and hpa-on-forecast (name them with or without @T). Default "
        f"policies: {' '.join(DEFAULT_FRONTIER_POLICIES)}. A point is marked dominated when "
        "another policy has one with no more violations and no more cost",
    )
    parser.add_argument(
        "--quantiles",
        type=float,
        nargs="+",
        metavar="Q",
        default=list(DEFAULT_QUANTILES),
        help=f"--frontier: quantiles to sweep (default {' '.join(map(str, DEFAULT_QUANTILES))})",
    )
    parser.add_argument(
        "--targets",
        type=float,
        nargs="+",
        metavar="T",
        default=list(DEFAULT_TARGETS),
        help=f"--frontier: targets to sweep (default {' '.join(map(str, DEFAULT_TARGETS))})",
    )
    parser.add_argument(
        "--jobs",
        type=workers,
        default=None,
        metavar="N",
        help="traces replayed at once, in worker processes (the figures are the same whatever "
        "N). Default: the CPUs this process may run on",
    )
    parser.add_argument(
        "--vertical",
        action="store_true",
        help="vertical backtest: size requests on a CPU or memory usage trace (foresight "
        "decides every controller.resize_every_seconds with policy.vertical, as the live "
        "controller does)",
    )
    parser.add_argument(
        "--joint",
        action="store_true",
        help="horizontal and vertical together on a workload's total load: replicas alone, "
        "the joint decision, and both sides deciding independently (pods re-sized every "
        "controller.resize_every_seconds, as the live controller does)",
    )


def _cpus() -> int:
    counted = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if counted is not None:
        return int(counted() or 1)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _progress(done: int, total: int, name: str) -> None:
    width = 30
    filled = width * done // max(total, 1)
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done == total else ""
    sys.stderr.write(f"\r[{bar}] {done}/{total} {name:<40}{end}")
    sys.stderr.flush()


def _plot_paths(base: Path, names: list[str]) -> list[Path]:
    if len(names) == 1:
        return [base]
    return [base.with_name(f"{base.stem}-{n}{base.suffix or '.png'}") for n in names]


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from autoscaler.backtest import policies as registry  # noqa: PLC0415 (heavy imports)
    from autoscaler.backtest.report import format_table  # noqa: PLC0415
    from autoscaler.backtest.run import run_suite  # noqa: PLC0415
    from autoscaler.backtest.trace import TraceError, trace_files  # noqa: PLC0415
    from autoscaler.backtest.world import WorldConfig, WorldError  # noqa: PLC0415
    from autoscaler.forecast.base import ForecastError  # noqa: PLC0415
    from autoscaler.forecast.registry import check_model_name  # noqa: PLC0415
    from autoscaler.forecast.settings import ForecastSettings  # noqa: PLC0415

    jobs = _cpus() if args.jobs is None else args.jobs
    try:
        paths = trace_files(list(args.trace))
        if args.vertical:
            return _run_vertical(paths, args, settings, jobs)
        config = WorldConfig(
            startup_seconds=args.startup,
            peak_replicas=args.peak_replicas,
            warmup_seconds=args.warmup,
        )
        if args.joint:
            return _run_joint(paths, config, args, settings.controller.resize_every_seconds, jobs)
        overrides: dict[str, object] = {}
        if args.model is not None:
            try:
                overrides["model"] = check_model_name(args.model)
            except ForecastError as e:
                raise CommandError(f"--model: {e}") from e
        if args.quantile is not None:
            overrides["quantile"] = args.quantile
        forecast = ForecastSettings.model_validate({**settings.forecast.model_dump(), **overrides})
        if args.frontier:
            return _run_frontier(paths, config, forecast, args, jobs)
        names = list(args.policy or registry.DEFAULT_POLICIES)
        for name in names:
            registry.make_policy(name)
        show = sys.stderr.isatty() and not args.json
        progress = _progress if show else None
        suite = run_suite(paths, config, names, forecast, progress=progress, jobs=jobs)
    except (TraceError, WorldError, ForecastError, registry.PolicyError, ValueError) as e:
        raise CommandError(str(e)) from e
    except BrokenProcessPool as e:
        raise CommandError(
            f"a worker process died ({e}); out of memory? Try fewer at once with --jobs"
        ) from e
    if args.json:
        print(json.dumps(suite.as_json(), indent=2))
    else:
        print(format_table(suite), end="")
    if args.plot is not None:
        from autoscaler.backtest.plot import PlotsUnavailable, plot_trace  # noqa: PLC0415

        for result, path in zip(
            suite.results,
            _plot_paths(args.plot, [r.world.name for r in suite.results]),
            strict=True,
        ):
            try:
                plot_trace(result, path)
            except PlotsUnavailable as e:
                raise CommandError(str(e)) from e
    return 0


def _run_frontier(
    paths: list[Path],
    config: WorldConfig,
    forecast: ForecastSettings,
    args: argparse.Namespace,
    jobs: int,
) -> int:
    from autoscaler.backtest.frontier import (  # noqa: PLC0415
        DEFAULT_FRONTIER_POLICIES,
        format_frontier,
        run_frontier,
        sweep,
    )

    points = sweep(
        list(args.policy or DEFAULT_FRONTIER_POLICIES), args.quantiles, args.targets, forecast
    )
    show = sys.stderr.isatty() and not args.json
    progress = _progress if show else None
    frontier = run_frontier(paths, config, points, progress=progress, jobs=jobs)
    if args.json:
        print(json.dumps(frontier.as_json(), indent=2))
    else:
        print(format_frontier(frontier), end="")
    if args.plot is not None:
        from autoscaler.backtest.plot import PlotsUnavailable, plot_frontier  # noqa: PLC0415

        try:
            plot_frontier(frontier, args.plot)
        except PlotsUnavailable as e:
            raise CommandError(str(e)) from e
    return 0


def _run_vertical(
    paths: list[Path], args: argparse.Namespace, settings: Settings, jobs: int
) -> int:
    from autoscaler.backtest.parallel import map_traces  # noqa: PLC0415
    from autoscaler.backtest.vertical import format_vertical, run_vertical  # noqa: PLC0415

    every = settings.controller.resize_every_seconds
    replay_one = partial(run_vertical, settings=settings.policy.vertical, decision_seconds=every)
    results = list(map_traces(replay_one, paths, jobs))
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(format_vertical(results), end="")
    return 0


def _run_joint(
    paths: list[Path],
    config: WorldConfig,
    args: argparse.Namespace,
    resize_every_seconds: float,
    jobs: int,
) -> int:
    from autoscaler.backtest.joint import format_joint, run_joint  # noqa: PLC0415
    from autoscaler.backtest.parallel import map_traces  # noqa: PLC0415

    replay_one = partial(run_joint, config=config, resize_every_seconds=resize_every_seconds)
    results = []
    done = map_traces(replay_one, paths, jobs)
    for k, (path, result) in enumerate(zip(paths, done, strict=True), 1):
        results.append(result)
        if sys.stderr.isatty() and not args.json:
            _progress(k, len(paths), path.name)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(format_joint(results), end="")
    return 0


COMMAND = Command(
    name="backtest",
    help="replay a load trace through the scaling policies and score them",
    description="Replay `timestamp,value` traces through foresight's policy and the reference "
    "policies (hpa@T, the predictive peers ehpa@T, phpa-hw@T, phpa-lin@T, hpa-on-forecast@T, "
    "and the yardsticks oracle and static) in the world model of docs/architecture.md, and "
    "print SLO and cost figures per trace and aggregated, then whether foresight has fewer "
    "violations than each competitor's best setting (hpa, ehpa, phpa-hw, phpa-lin: its "
    "fewest violations) at a lower cost than the cheapest of those. With --frontier, sweep each "
    "policy's quantile or target and print (and --plot) violations against cost. With "
    "--vertical, compare request sizing on a "
    "CPU or memory usage trace instead; with --joint, replicas and pod sizes together on a "
    "workload's total load.",
    add_arguments=_add_arguments,
    run=_run,
)
