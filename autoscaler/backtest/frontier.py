"""Frontiers: violations against cost for each policy as its knob is swept.

foresight's knob is the forecast quantile; the reference policies' (``hpa``, ``ehpa``,
``phpa-hw``, ``phpa-lin``, ``hpa-on-forecast``) is the target utilisation. Every point is a
full backtest over the traces, aggregated as ``docs/architecture.md`` says. A point is
*dominated* when another policy has a point with no more violations and no more cost (and
less of one); a policy whose every point is dominated by one other policy is beaten on its
whole frontier.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from autoscaler.backtest.observation import ReplicaPolicy
from autoscaler.backtest.parallel import in_this_process, map_traces
from autoscaler.backtest.policies import (
    TARGETED,
    PolicyError,
    is_foresight,
    make_policy,
    split_target,
)
from autoscaler.backtest.run import ORACLE
from autoscaler.backtest.scoring import Aggregate, Score, aggregate, replica_seconds, score
from autoscaler.backtest.trace import load_trace
from autoscaler.backtest.world import World, WorldConfig, build_world, replay
from autoscaler.forecast.settings import ForecastSettings

__all__ = [
    "DEFAULT_FRONTIER_POLICIES",
    "DEFAULT_QUANTILES",
    "DEFAULT_TARGETS",
    "Frontier",
    "FrontierPoint",
    "SweepPoint",
    "format_frontier",
    "run_frontier",
    "sweep",
]

# Up to the default quantile (forecast.quantile), so that the default point is on its curve.
DEFAULT_QUANTILES = (0.98, 0.99, 0.995, 0.997, 0.999, 0.9995)
DEFAULT_TARGETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DEFAULT_FRONTIER_POLICIES = ("foresight", "hpa", "ehpa", "phpa-hw", "phpa-lin", "hpa-on-forecast")

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SweepPoint:
    """One setting of one policy: its family (``hpa``, ``foresight:MODEL``...), the knob and
    its value, and the policy name it runs as."""

    family: str
    knob: str  # "quantile" or "target"
    value: float
    name: str
    forecast: ForecastSettings | None


@dataclass(frozen=True)
class FrontierPoint:
    """A swept setting and its figures over the traces."""

    point: SweepPoint
    aggregate: Aggregate


@dataclass
class Frontier:
    """Every point of every policy, in sweep order."""

    points: list[FrontierPoint]
    traces: list[str]

    def families(self) -> list[str]:
        """The policies, in sweep order."""
        return list(dict.fromkeys(p.point.family for p in self.points))

    def curve(self, family: str) -> list[FrontierPoint]:
        """The points of one policy, by knob value."""
        return [p for p in self.points if p.point.family == family]

    def dominated_by(self, family: str) -> list[str]:
        """The other policies that dominate every point of ``family``'s curve."""
        mine = self.curve(family)
        return [
            other
            for other in self.families()
            if other != family and all(_dominated(p, self.curve(other)) for p in mine)
        ]

    def as_json(self) -> dict[str, object]:
        """Points with their figures, and which policies each policy is beaten by."""
        return {
            "traces": self.traces,
            "points": [
                {
                    "policy": p.point.family,
                    "name": p.point.name,
                    "knob": p.point.knob,
                    "value": p.point.value,
                    **p.aggregate.as_dict(),
                }
                for p in self.points
            ],
            "dominated_by": {f: self.dominated_by(f) for f in self.families()},
        }


def _beats(a: Aggregate, b: Aggregate) -> bool:
    no_worse = a.violation_pct <= b.violation_pct and a.cost_vs_oracle <= b.cost_vs_oracle
    better = a.violation_pct < b.violation_pct or a.cost_vs_oracle < b.cost_vs_oracle
    return no_worse and better


def _dominated(point: FrontierPoint, others: Sequence[FrontierPoint]) -> bool:
    return any(_beats(o.aggregate, point.aggregate) for o in others)


def _with_quantile(family: str, forecast: ForecastSettings | None, q: float) -> ForecastSettings:
    base = (forecast or ForecastSettings()).model_dump()
    base["quantile"] = q
    if family.startswith("foresight:"):
        base["model"] = family.removeprefix("foresight:")
    try:
        return ForecastSettings.model_validate(base)
    except ValueError as e:
        raise PolicyError(f"policy {family!r} at quantile {q}: {e}") from e


def sweep(
    policies: Sequence[str],
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    targets: Sequence[float] = DEFAULT_TARGETS,
    forecast: ForecastSettings | None = None,
) -> list[SweepPoint]:
    """The points to run: ``foresight`` / ``foresight:MODEL`` at each quantile, every
    targeted policy (named as a family, ``hpa``, or with any target, ``hpa@0.7``) at each
    target. ``forecast`` is the base forecast setting (hpa-on-forecast reads it as is)."""
    points: list[SweepPoint] = []
    for name in dict.fromkeys(policies):
        if is_foresight(name):
            for q in quantiles:
                settings = _with_quantile(name, forecast, q)
                points.append(SweepPoint(name, "quantile", q, f"{name}~{q:g}", settings))
            continue
        family = name if name in TARGETED else None
        if family is None:
            split = split_target(name)
            if split is None:
                raise PolicyError(
                    f"--frontier sweeps foresight[:MODEL] or a targeted policy "
                    f"({', '.join(TARGETED)}); {name!r} has no knob"
                )
            family = split[0]
        for t in targets:
            make_policy(f"{family}@{t:g}")  # validates the target
            points.append(SweepPoint(family, "target", t, f"{family}@{t:g}", forecast))
    return points


def _build(point: SweepPoint, world: World, memo: dict[object, dict[int, float]]) -> ReplicaPolicy:
    if point.family == "hpa-on-forecast":
        from autoscaler.backtest.hpa_forecast import HpaOnForecastPolicy  # noqa: PLC0415

        # The demand, hence the forecast, is the same whatever the target: share it.
        shared = memo.setdefault(("forecast", point.forecast), {})
        return HpaOnForecastPolicy(world.info, point.value, point.forecast, memo=shared)
    if point.knob == "quantile":
        return make_policy("foresight", point.forecast).build(world)
    return make_policy(point.name, point.forecast).build(world)


def _trace_scores(
    path: Path,
    config: WorldConfig,
    points: Sequence[SweepPoint],
    step: Callable[[str], None] | None = None,
) -> tuple[str, list[Score]]:
    world = build_world(load_trace(path), config)
    oracle = replica_seconds(replay(world, make_policy(ORACLE).build(world)))
    memo: dict[object, dict[int, float]] = {}
    scores: list[Score] = []
    for point in points:
        if step is not None:
            step(f"{world.name} {point.name}")
        scores.append(score(replay(world, _build(point, world, memo)), oracle))
    return world.name, scores


def run_frontier(
    paths: Sequence[Path],
    config: WorldConfig,
    points: Sequence[SweepPoint],
    progress: Progress | None = None,
    jobs: int = 1,
) -> Frontier:
    """Every point on every trace (``jobs`` traces at a time in worker processes); aggregates
    per point. Progress counts points in one process, traces with workers."""
    scores: list[list[Score]] = [[] for _ in points]
    names: list[str] = []
    replay_one = partial(_trace_scores, config=config, points=points)
    alone = in_this_process(paths, jobs)
    if progress is not None and alone:
        total, count = len(paths) * len(points), itertools.count()
        report = progress
        # In this process, so a sweep of one long trace shows its points go by.
        replay_one = partial(replay_one, step=lambda name: report(next(count), total, name))
    done = map_traces(replay_one, paths, jobs)
    for k, (path, (name, trace_scores)) in enumerate(zip(paths, done, strict=True), 1):
        names.append(name)
        for column, s in zip(scores, trace_scores, strict=True):
            column.append(s)
        if progress is not None and not alone:
            progress(k, len(paths), path.stem)
    if progress is not None and alone:
        progress(len(paths) * len(points), len(paths) * len(points), "")
    return Frontier(
        points=[FrontierPoint(p, aggregate(s)) for p, s in zip(points, scores, strict=True)],
        traces=names,
    )


def format_frontier(frontier: Frontier) -> str:
    """A table with every point, then which policies are beaten on their whole frontier."""
    width = max([12, *(len(f) for f in frontier.families())])
    head = (
        f"{'policy':<{width}} {'knob':<8} {'value':>6} {'viol%':>7} {'unserved%':>9} "
        f"{'cost/oracle':>11} {'actions/day':>11}  dominated"
    )
    lines = [f"frontier over {len(frontier.traces)} trace(s)", head, "-" * len(head)]
    for family in frontier.families():
        curve = frontier.curve(family)
        others = [p for p in frontier.points if p.point.family != family]
        for p in curve:
            a = p.aggregate
            mark = "yes" if _dominated(p, others) else ""
            lines.append(
                f"{family:<{width}} {p.point.knob:<8} {p.point.value:>6g} {a.violation_pct:>7.3f} "
                f"{a.unserved_pct:>9.3f} {a.cost_vs_oracle:>11.3f} {a.actions_per_day:>11.1f}  "
                f"{mark}"
            )
    lines.append("")
    for family in frontier.families():
        beaters = frontier.dominated_by(family)
        if beaters:
            lines.append(f"{family}: every point dominated by {', '.join(beaters)}")
        else:
            lines.append(f"{family}: not dominated on its whole frontier by any one policy")
    return "\n".join(lines) + "\n"
