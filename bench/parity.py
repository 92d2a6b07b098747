"""Parity benchmark: ``python -m bench.parity [TRACE ...] [--days 2] [--json]``.

Runs each trace through the live service on a virtual clock and through the backtest, on the
same demand, and prints, per trace, the violating steps (%) and the cost (replica-hours) of
each, and the differences. Target: violations within ±0.1 percentage point and cost within
±5 % on every trace. How the two runs are set up is in ``autoscaler/demo/parity.py``.

Without TRACE, a few of the shared traces in ``$FORESIGHT_TEST_DATA/traces`` (default
``../shared/data/traces``).

What was found and fixed on the way (each made the live service differ from the backtest):

- the controller's history grid was 60 s against the backtest's 15 s: the forecast horizon
  was stretched to whole minutes (120 s for a 75 s horizon) and the model fitted on other
  samples; live cost 14 % more on the Twitter trace over 12 h. It is 15 s now, and the week of
  history is read in chunks the query engine accepts (a 15 s week is over 11,000 points);
- a grid cell without an observation was a gap, so a controller deciding less often than its
  grid (or a load sampled less often) fell back to reactive scaling once more than
  ``forecast.max_gap_fraction`` of its window was empty: a cell now
  holds the latest observation for the engine's lookback, as the range query that filled the
  history does;
- on its first reconcile the controller counts the current replicas as a recommendation (the
  scale-down window starts with it); the backtest's policy now starts the same way.

Remaining difference: the load the controller reads is the pods' measured CPU, which in the
simulator includes every container's idle CPU (2 millicores, also on pods still starting),
where the backtest's policy reads the demand itself. It errs towards one more replica when
the forecast sits just below a replica boundary. With the idle CPU set to 0 the two runs are
identical step by step (6 h of the Twitter trace, and the two days of crane_input13: every
replica count and every violating step equal); with it, the Twitter run cost 0.7 % more live,
and on the default traces the live run had 4 violating steps fewer (0.035 pp) at up to 0.5 %
more cost.

The live run decides every 15 s on the same grid as the replay, and the simulated cluster's
controllers act on a scale at once, so a new pod serves ``startup`` seconds after the decision
on both sides. On a real cluster, scheduling and image pulls add to that: give the backtest
the startup you measure from scale-up to ready.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autoscaler.backtest.scoring import score
from autoscaler.backtest.world import Replay
from autoscaler.demo.parity import ParityConfig, live_run, replayed_run, trace_world

DATA_ENV = "FORESIGHT_TEST_DATA"
DEFAULT_TRACES = (
    "google2019_cell_avg_cpu.csv",
    "crane_input13.csv",
    "twitter_stream_2021_events_per_minute.csv",
)
VIOLATION_TOLERANCE_PP = 0.1
COST_TOLERANCE = 0.05
HOUR = 3600.0


def data_root() -> Path:
    """``$FORESIGHT_TEST_DATA`` or ``../shared/data`` beside the repository."""
    configured = os.environ.get(DATA_ENV)
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "shared/data"


@dataclass(frozen=True)
class Figures:
    """One side's figures on one trace."""

    violation_pct: float
    replica_hours: float
    actions: int

    @classmethod
    def of(cls, run: Replay) -> Figures:
        s = score(run, 1.0)
        return cls(s.violation_pct, s.replica_seconds / HOUR, s.actions)


@dataclass(frozen=True)
class Parity:
    """Live and replayed figures of one trace, and whether they agree."""

    trace: str
    live: Figures
    replayed: Figures
    wall_seconds: float

    @property
    def violation_diff_pp(self) -> float:
        return self.live.violation_pct - self.replayed.violation_pct

    @property
    def cost_diff(self) -> float:
        """Live cost relative to the replayed cost, minus 1."""
        return self.live.replica_hours / self.replayed.replica_hours - 1.0

    @property
    def within(self) -> bool:
        return (
            abs(self.violation_diff_pp) <= VIOLATION_TOLERANCE_PP + 1e-12
            and abs(self.cost_diff) <= COST_TOLERANCE
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "trace": self.trace,
            "live": vars(self.live),
            "replayed": vars(self.replayed),
            "violation_diff_pp": round(self.violation_diff_pp, 4),
            "cost_diff_pct": round(100 * self.cost_diff, 3),
            "within_target": self.within,
            "wall_seconds": round(self.wall_seconds, 1),
        }


def compare(
    trace: Path, config: ParityConfig, progress: Callable[[str], None] | None = None
) -> tuple[Parity, Replay, Replay]:
    """One trace through both sides; the figures and both runs."""
    began = time.perf_counter()
    replayed = replayed_run(trace_world(trace, config))
    if progress is not None:
        progress(f"  replayed in {time.perf_counter() - began:.0f} s")
    live = asyncio.run(live_run(trace, config, replayed.initial, progress))
    result = Parity(trace.stem, Figures.of(live), Figures.of(replayed), time.perf_counter() - began)
    return result, live, replayed


def format_table(p: Parity) -> str:
    """The per-trace table."""
    rows = [
        f"## {p.trace}",
        f"{'':<10} {'violating steps':>16} {'replica-hours':>14} {'actions':>8}",
        f"{'live':<10} {p.live.violation_pct:>15.3f}% {p.live.replica_hours:>14.1f} "
        f"{p.live.actions:>8}",
        f"{'replayed':<10} {p.replayed.violation_pct:>15.3f}% {p.replayed.replica_hours:>14.1f} "
        f"{p.replayed.actions:>8}",
        f"{'diff':<10} {p.violation_diff_pp:>+14.3f}pp {100 * p.cost_diff:>+13.2f}% "
        f"{'':>8}  {'within target' if p.within else 'OUTSIDE TARGET'}",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.parity",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("traces", type=Path, nargs="*", help="timestamp,value CSV files")
    parser.add_argument("--days", type=float, default=2.0, help="simulated days scored")
    parser.add_argument("--history-days", type=float, default=7.0, help="days of history first")
    parser.add_argument("--startup", type=float, default=60.0, help="pod startup, seconds")
    parser.add_argument("--peak-replicas", type=int, default=20)
    parser.add_argument(
        "--history-step",
        type=float,
        default=None,
        help="the controller's history grid, seconds (default: the service's default)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    traces = args.traces or [data_root() / "traces" / name for name in DEFAULT_TRACES]
    missing = [str(t) for t in traces if not t.is_file()]
    if missing:
        raise SystemExit(f"no such trace: {', '.join(missing)} (set {DATA_ENV})")
    config = ParityConfig(
        startup_seconds=args.startup,
        peak_replicas=args.peak_replicas,
        history_days=args.history_days,
        days=args.days,
        history_step_seconds=args.history_step,
    )

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results = []
    for k, trace in enumerate(traces):
        progress(f"[{k + 1}/{len(traces)}] {trace.stem}")
        result, _, _ = compare(trace, config, progress)
        results.append(result)
        if not args.json:
            print(format_table(result), "\n", flush=True)
    ok = all(r.within for r in results)
    if args.json:
        print(json.dumps({"results": [r.as_dict() for r in results], "within_target": ok}))
    else:
        print(
            f"{sum(r.within for r in results)}/{len(results)} traces within target "
            f"(violations ±{VIOLATION_TOLERANCE_PP} pp, cost ±{100 * COST_TOLERANCE:g} %)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
