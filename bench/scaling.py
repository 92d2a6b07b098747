"""Scaling benchmark: ``python -m bench.scaling DIR [--startup 30 60 120 300]``.

Replays every trace in DIR through foresight and the reference policies in the world model of
``docs/architecture.md`` and prints, per pod startup, the per-trace table and the aggregates, then a
summary of foresight against the HPA frontier (fewer violations than hpa@0.5, lower cost than
hpa@0.7).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from autoscaler.backtest.policies import DEFAULT_POLICIES
from autoscaler.backtest.report import format_table
from autoscaler.backtest.run import Suite, run_suite
from autoscaler.backtest.trace import trace_files
from autoscaler.backtest.world import WorldConfig


def verdict(suite: Suite) -> str:
    """One line: does foresight beat the HPA on both axes?"""
    a = suite.aggregates
    f, low, mid = a["foresight"], a["hpa@0.5"], a["hpa@0.7"]
    fewer = f.violation_pct < low.violation_pct
    cheaper = f.cost_vs_oracle < mid.cost_vs_oracle
    return (
        f"foresight viol {f.violation_pct:.3f}% vs hpa@0.5 {low.violation_pct:.3f}% "
        f"({'better' if fewer else 'WORSE'}); cost {f.cost_vs_oracle:.3f} vs hpa@0.7 "
        f"{mid.cost_vs_oracle:.3f} ({'better' if cheaper else 'WORSE'})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__)
    parser.add_argument("dir", type=Path, help="folder of timestamp,value traces")
    parser.add_argument("--startup", type=float, nargs="+", default=[60.0], help="seconds")
    parser.add_argument("--peak-replicas", type=int, default=20)
    args = parser.parse_args(argv)
    paths = trace_files([args.dir])
    summary: list[str] = []
    for startup in args.startup:
        began = time.perf_counter()
        config = WorldConfig(startup_seconds=startup, peak_replicas=args.peak_replicas)
        suite = run_suite(paths, config, DEFAULT_POLICIES)
        print(f"## startup {startup:.0f} s, peak {args.peak_replicas} replicas")
        print(format_table(suite))
        line = f"startup {startup:>4.0f} s: {verdict(suite)}"
        print(line, f"[{time.perf_counter() - began:.0f} s]\n", flush=True)
        summary.append(line)
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
