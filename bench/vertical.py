"""Request sizing against the VPA: ``python -m bench.vertical [TRACE...] [--json]``.

Replays each usage trace through ``foresight backtest --vertical`` (foresight, the VPA
recommender and updater with their defaults, KRR) and prints one line per trace and policy:
slack %, throttled %, OOM events, resizes. Then, per resource, foresight's slack margin over
the VPA (VPA slack − foresight slack, in points) across traces: mean, min, quartiles, max;
the traces where foresight throttles more or is OOM-killed more often than the VPA, those
where it leaves no less slack, and how many it beats on both figures (less slack, no more
throttling or OOM kills).
Each trace also gets a ``floor`` line: a clairvoyant constant request at the peak of the
scored usage, the least slack any constant request has without throttling or an OOM kill.

Without TRACE: every CPU- and memory-like trace in ``$FORESIGHT_TEST_DATA/traces`` (default
``../shared/data/traces``), as :func:`usage_kind` classifies them by name. Request counts
(the Twitter series) and network bytes are not container usage and are left out; named on
the command line they are replayed as CPU (compressible), as the backtest does.
Progress goes to stderr.

``--shift DAYS [DAYS ...]``: the same replays again with each trace's first DAYS dropped, so
that the warm-up and the scored window start later, and per shift one summary line per
resource: how far a result rests on where the scored window happens to begin. ``--jobs N``
replays N traces at a time.

``--frontier``: for each CPU trace, foresight's calibrated requests at fixed risks
(``cpu_throttle_target`` from 0 to 0.2, no fallback) and the least slack its frontier has at
the VPA's throttled %: the lower envelope of those points, where a point between two of them
is what alternating between their two risks gives. A VPA point above that envelope is
dominated by some mix of foresight's settings even where the default does not beat it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from autoscaler.backtest.parallel import map_traces
from autoscaler.backtest.trace import trace_files
from autoscaler.backtest.vertical import (
    ForesightVertical,
    VerticalResult,
    VerticalScore,
    format_vertical,
    replay_vertical,
    run_vertical,
    vertical_inputs,
)
from autoscaler.cli.cmd_backtest import workers
from autoscaler.policy.settings import VerticalSettings
from tests.support.external import data_root

__all__ = [
    "FRONTIER_RISKS",
    "ConstantFloor",
    "MarginSummary",
    "floor_score",
    "frontier",
    "main",
    "replay_all",
    "slack_at",
    "summarise",
    "usage_kind",
]

# Name fragments of shared traces that measure container-like CPU: utilisation %, MHz, cores.
# crane_input* are the Tencent series gocrane/crane predicts CPU on (input0 is labelled CPU).
CPU_LIKE = ("cpu", "crane_input", "grok_asg")
MEMORY_LIKE = ("mem",)
# Arrivals and traffic, not usage of a resource a request reserves.
NOT_USAGE = ("twitter", "network")
# The fixed CPU risks of --frontier.
FRONTIER_RISKS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2)


def usage_kind(name: str) -> str | None:
    """``cpu``, ``memory`` or None (not container usage) for a trace file name."""
    lower = name.lower()
    if any(f in lower for f in NOT_USAGE):
        return None
    if any(f in lower for f in MEMORY_LIKE):
        return "memory"
    if any(f in lower for f in CPU_LIKE):
        return "cpu"
    return None


class ConstantFloor:
    """A clairvoyant constant request: the peak of the usage it will be scored on."""

    name = "floor"
    decision_seconds = math.inf

    def __init__(self, peak: float) -> None:
        self.peak = peak

    def observe(self, at: float, used: float, request: float | None) -> None:
        return None

    def oom(self, at: float, used: float, request: float) -> None:
        return None

    def decide(self, at: float, request: float | None, after_oom: bool) -> float:
        return self.peak


def floor_score(path: Path) -> VerticalScore:
    """The ``floor`` reference on one trace, scored like every policy."""
    v = vertical_inputs(path)
    peak = float(v.usage[v.first :].max()) if v.first < len(v.usage) else 0.0
    return replay_vertical(v.times, v.usage, v.first, v.resource, ConstantFloor(peak))


def frontier(path: Path, risks: Sequence[float] = FRONTIER_RISKS) -> list[VerticalScore]:
    """foresight's score on one CPU trace at each fixed risk, without the fallback."""
    v = vertical_inputs(path)
    out = []
    for risk in risks:
        settings = VerticalSettings(cpu_throttle_target=risk, cpu_fallback=False)
        policy = ForesightVertical(v.resource, settings, v.first_bucket)
        out.append(replay_vertical(v.times, v.usage, v.first, v.resource, policy))
    return out


def slack_at(points: Sequence[VerticalScore], throttled_pct: float) -> float | None:
    """Least slack of the lower envelope of ``points`` at ``throttled_pct`` (None: none that
    low). Any point throttling no more counts, and so does every mix of two points on either
    side of it (alternating between their settings gives the line between them)."""
    best: float | None = None
    for a in points:
        if a.throttled_pct <= throttled_pct:
            best = a.slack_pct if best is None else min(best, a.slack_pct)
        for b in points:
            lo, hi = a.throttled_pct, b.throttled_pct
            if lo < throttled_pct < hi:
                w = (throttled_pct - lo) / (hi - lo)
                mixed = a.slack_pct + w * (b.slack_pct - a.slack_pct)
                best = mixed if best is None else min(best, mixed)
    return best


def _format_frontier(rows: Sequence[tuple[VerticalResult, list[VerticalScore]]]) -> str:
    lines = [f"{'trace':<34} {'vpa slack/throttled%':>20} {'foresight frontier slack at it':>31}"]
    for result, points in rows:
        vpa = next(s for s in result.scores if s.policy == "vpa")
        at = slack_at(points, vpa.throttled_pct)
        verdict = "-" if at is None else ("below" if at <= vpa.slack_pct else "above")
        shown = "none" if at is None else f"{at:.2f}"
        lines.append(
            f"{result.trace[:34]:<34} {vpa.slack_pct:>11.2f} / {vpa.throttled_pct:>5.2f} "
            f"{shown:>24} ({verdict})"
        )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class MarginSummary:
    """foresight's slack margin over the VPA (points) across the traces of one resource."""

    resource: str
    traces: int
    mean: float
    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float
    worse: list[str]  # traces where foresight throttles or is OOM-killed more than the VPA
    looser: list[str]  # traces where foresight leaves no less slack than the VPA
    wins: list[str]  # traces where foresight leaves less slack and does no more harm


def summarise(results: Sequence[VerticalResult]) -> list[MarginSummary]:
    """Per resource, the spread of (VPA slack − foresight slack) and the traces it harms."""
    out = []
    for resource in ("cpu", "memory"):
        margins: list[float] = []
        worse: list[str] = []
        looser: list[str] = []
        wins: list[str] = []
        for r in results:
            if r.resource != resource:
                continue
            scores = {s.policy: s for s in r.scores}
            f, vpa = scores["foresight"], scores["vpa"]
            margins.append(vpa.slack_pct - f.slack_pct)
            harms = f.throttled_pct > vpa.throttled_pct or f.oom_events > vpa.oom_events
            if harms:
                worse.append(r.trace)
            if f.slack_pct >= vpa.slack_pct:
                looser.append(r.trace)
            elif not harms:
                wins.append(r.trace)
        if not margins:
            continue
        # Sample quartiles need two values; one trace is its own quartiles.
        q1, median, q3 = (
            statistics.quantiles(margins, n=4, method="inclusive")
            if len(margins) > 1
            else [margins[0]] * 3
        )
        out.append(
            MarginSummary(
                resource,
                len(margins),
                statistics.fmean(margins),
                min(margins),
                q1,
                median,
                q3,
                max(margins),
                worse,
                looser,
                wins,
            )
        )
    return out


def _format_summary(summaries: Sequence[MarginSummary]) -> str:
    lines = []
    for m in summaries:
        lines.append(
            f"{m.resource:<6} slack margin over vpa (pp) on {m.traces} traces: mean "
            f"{m.mean:.2f}, min {m.minimum:.2f}, q1 {m.q1:.2f}, median {m.median:.2f}, "
            f"q3 {m.q3:.2f}, max {m.maximum:.2f}; more harm than vpa on "
            f"{len(m.worse)}: {', '.join(m.worse) or '-'}; no less slack on "
            f"{len(m.looser)}: {', '.join(m.looser) or '-'}; beats vpa on both figures on "
            f"{len(m.wins)} of {m.traces}"
        )
    return "\n".join(lines) + "\n"


def _replay(path: Path, skip_days: float) -> VerticalResult:
    result = run_vertical(path, skip_days=skip_days)
    if skip_days == 0:
        result.scores.append(floor_score(path))
    return result


def replay_all(
    paths: Sequence[Path], skip_days: float = 0.0, jobs: int = 1
) -> list[VerticalResult]:
    """Every trace through :func:`run_vertical` (``jobs`` at a time), progress on stderr."""
    label = f" (first {skip_days:g} days dropped)" if skip_days else ""
    out: list[VerticalResult] = []
    results = map_traces(partial(_replay, skip_days=skip_days), paths, jobs)
    for done, (path, result) in enumerate(zip(paths, results, strict=True), 1):
        sys.stderr.write(f"[{done}/{len(paths)}] {path.stem}{label}\n")
        out.append(result)
    return out


def _format_shifts(shifts: Sequence[tuple[float, list[MarginSummary]]]) -> str:
    lines = []
    for days, summaries in shifts:
        for m in summaries:
            lost = dict.fromkeys((*m.worse, *m.looser))  # a trace can be in both
            lines.append(
                f"first {days:g} days dropped: {m.resource:<6} beats vpa on both figures on "
                f"{len(m.wins)} of {m.traces}, mean slack margin {m.mean:.2f} pp; not on: "
                f"{', '.join(lost) or '-'}"
            )
    return "\n".join(lines) + "\n"


def default_traces() -> list[Path]:
    """Every CPU- and memory-like shared trace."""
    return [p for p in trace_files([data_root() / "traces"]) if usage_kind(p.stem) is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.vertical", description=__doc__)
    parser.add_argument("traces", type=Path, nargs="*", metavar="TRACE")
    parser.add_argument("--json", action="store_true", help="results and summaries as JSON")
    parser.add_argument(
        "--frontier",
        action="store_true",
        help="also sweep foresight's CPU risk and compare its frontier with the VPA",
    )
    parser.add_argument(
        "--shift",
        type=float,
        nargs="+",
        default=[],
        metavar="DAYS",
        help="also replay each trace without its first DAYS and summarise each shift",
    )
    parser.add_argument("--jobs", type=workers, default=1, help="traces replayed at a time")
    args = parser.parse_args(argv)
    if any(d <= 0 for d in args.shift):
        parser.error("--shift takes days > 0")
    paths = trace_files(args.traces) if args.traces else default_traces()
    results = replay_all(paths, jobs=args.jobs)
    summaries = summarise(results)
    shifts = [(d, summarise(replay_all(paths, d, args.jobs))) for d in args.shift]
    frontiers = []
    if args.frontier:
        for path, result in zip(paths, results, strict=True):
            if result.resource == "cpu":
                sys.stderr.write(f"frontier {path.stem}\n")
                frontiers.append((result, frontier(path)))
    if args.json:
        out: dict[str, object] = {
            "results": [r.as_dict() for r in results],
            "summaries": [vars(s) for s in summaries],
        }
        if shifts:
            out["shifts"] = [
                {"skip_days": d, "summaries": [vars(m) for m in ms]} for d, ms in shifts
            ]
        if frontiers:
            out["frontiers"] = {
                r.trace: [dict(vars(p), risk=k) for p, k in zip(f, FRONTIER_RISKS, strict=True)]
                for r, f in frontiers
            }
        print(json.dumps(out, indent=2))
    else:
        print(format_vertical(results), end="")
        print(_format_summary(summaries), end="")
        if shifts:
            print(_format_shifts(shifts), end="")
        if frontiers:
            print(_format_frontier(frontiers), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
