"""Forecast frontiers: ``python -m bench.forecast_frontier DIR [--models naive conformal]``.

Replays every trace in DIR through foresight's policy in the backtest world (the one
``foresight backtest`` uses) once per model, quantile and pod startup, and prints the
aggregate violation % and cost vs the oracle of each point: the frontier of each model.
Then, for every model against the first (the baseline), whether it dominates it: at each
baseline point, the model's frontier (interpolated linearly in violation % and log cost)
must cost less at the baseline's violations and violate less at the baseline's cost.

Traces run in ``--jobs`` processes (one model fit and replay per trace and point); the
figures are those of ``foresight backtest --policy foresight --model M --quantile Q
--startup S`` on the same folder.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoscaler.backtest.run import run_trace
from autoscaler.backtest.scoring import Score, aggregate
from autoscaler.backtest.trace import trace_files
from autoscaler.backtest.world import WorldConfig
from autoscaler.cli.cmd_backtest import workers
from autoscaler.forecast.settings import ForecastSettings

DEFAULT_QUANTILES = (0.98, 0.99, 0.997)


@dataclass(frozen=True)
class Point:
    """One model at one quantile and startup, aggregated over the traces."""

    model: str
    startup: float
    quantile: float
    violation_pct: float
    cost_vs_oracle: float


def _score(job: tuple[Path, float, str, float]) -> Score:
    path, startup, model, quantile = job
    forecast = ForecastSettings(model=model, quantile=quantile)
    result = run_trace(path, WorldConfig(startup_seconds=startup), ["foresight"], forecast)
    return result.scores["foresight"]


def frontier(
    paths: Sequence[Path], startup: float, model: str, quantiles: Sequence[float], jobs: int
) -> list[Point]:
    """Aggregate points of ``model`` at each quantile (one pool over traces and quantiles)."""
    work = [(p, startup, model, q) for q in quantiles for p in paths]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        scores = list(pool.map(_score, work))
    points = []
    for k, q in enumerate(quantiles):
        agg = aggregate(scores[k * len(paths) : (k + 1) * len(paths)])
        points.append(Point(model, startup, q, agg.violation_pct, agg.cost_vs_oracle))
    return points


def _interp(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """Piecewise-linear ``y(x)`` through the points sorted by x; NaN outside their range."""
    order = np.argsort(xs)
    sx, sy = np.asarray(xs)[order], np.asarray(ys)[order]
    if x < sx[0] or x > sx[-1]:
        return math.nan
    return float(np.interp(x, sx, sy))


def dominates(model: Sequence[Point], base: Sequence[Point]) -> list[str]:
    """One line per baseline point: the model's cost at its violations and violations at its
    cost ("outside" where the model's frontier does not reach that far)."""
    lines = []
    viol = [p.violation_pct for p in model]
    log_cost = [math.log(p.cost_vs_oracle) for p in model]
    for b in base:
        cost_at = math.exp(_interp(b.violation_pct, viol, log_cost))
        viol_at = _interp(math.log(b.cost_vs_oracle), log_cost, viol)
        cheaper = cost_at < b.cost_vs_oracle
        fewer = viol_at < b.violation_pct
        lines.append(
            f"  vs {b.model} q={b.quantile}: cost at {b.violation_pct:.3f}% = "
            + (f"{cost_at:.3f}" if math.isfinite(cost_at) else "outside")
            + f" (base {b.cost_vs_oracle:.3f}); violations at {b.cost_vs_oracle:.3f}x = "
            + (f"{viol_at:.3f}%" if math.isfinite(viol_at) else "outside")
            + f" (base {b.violation_pct:.3f}%) -> "
            + ("dominates" if cheaper and fewer else "DOES NOT dominate")
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forecast_frontier", description=__doc__)
    parser.add_argument("dir", type=Path, help="folder of timestamp,value traces")
    parser.add_argument("--models", nargs="+", default=["naive", "conformal"])
    parser.add_argument("--startup", type=float, nargs="+", default=[60.0, 300.0])
    parser.add_argument("--quantiles", type=float, nargs="+", default=list(DEFAULT_QUANTILES))
    parser.add_argument("--jobs", type=workers, default=2, help="processes (default 2)")
    args = parser.parse_args(argv)
    paths = trace_files([args.dir])
    print(f"{'model':<12} {'startup s':>9} {'quantile':>8} {'viol %':>8} {'cost x':>7}")
    for startup in args.startup:
        fronts: list[list[Point]] = []
        for model in args.models:
            began = time.process_time()
            wall = time.perf_counter()
            points = frontier(paths, startup, model, args.quantiles, args.jobs)
            fronts.append(points)
            for p in points:
                print(
                    f"{p.model:<12} {p.startup:>9.0f} {p.quantile:>8} "
                    f"{p.violation_pct:>8.3f} {p.cost_vs_oracle:>7.3f}"
                )
            print(
                f"  [{time.perf_counter() - wall:.0f} s wall, "
                f"{time.process_time() - began:.0f} CPU-s in this process]",
                flush=True,
            )
        for points in fronts[1:]:
            print(f"{points[0].model} against {fronts[0][0].model} at {startup:.0f} s:")
            print("\n".join(dominates(points, fronts[0])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
