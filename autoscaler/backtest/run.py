"""One trace through several policies, and a set of traces with aggregates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from autoscaler.backtest.parallel import map_traces
from autoscaler.backtest.policies import is_foresight, make_policy
from autoscaler.backtest.scoring import Aggregate, Score, aggregate, replica_seconds, score
from autoscaler.backtest.trace import load_trace
from autoscaler.backtest.verdict import Verdict, verdicts
from autoscaler.backtest.world import Replay, World, WorldConfig, build_world, replay
from autoscaler.forecast.settings import ForecastSettings

__all__ = ["Suite", "TraceResult", "run_suite", "run_trace"]

ORACLE = "oracle"


@dataclass
class TraceResult:
    """Scores (and replays, for plots) of every policy on one trace."""

    world: World
    scores: dict[str, Score]
    replays: dict[str, Replay]
    forecasts: dict[str, NDArray[np.float64]] = field(default_factory=dict)


@dataclass
class Suite:
    """Results per trace and aggregates per policy."""

    results: list[TraceResult]
    aggregates: dict[str, Aggregate]

    def as_json(self) -> dict[str, object]:
        """One object per trace and policy, plus the aggregates."""
        rows: list[dict[str, object]] = []
        for r in self.results:
            for name, s in r.scores.items():
                rows.append({"trace": r.world.name, "policy": name, **s.as_dict()})
        aggregates = {name: a.as_dict() for name, a in self.aggregates.items()}
        judged = [v.as_dict() for v in self.verdicts()]
        return {"results": rows, "aggregates": aggregates, "verdicts": judged}

    def verdicts(self) -> list[Verdict]:
        """foresight's verdicts against the competitor settings replayed beside it."""
        return verdicts(self.aggregates, [n for n in self.aggregates if is_foresight(n)])


def run_trace(
    path: Path,
    config: WorldConfig,
    policies: Sequence[str],
    forecast: ForecastSettings | None = None,
) -> TraceResult:
    """Replay the trace at ``path`` through ``policies`` (the oracle always runs: it is the
    cost yardstick)."""
    specs = [make_policy(name, forecast) for name in policies]
    world = build_world(load_trace(path), config)
    oracle = replay(world, make_policy(ORACLE).build(world))
    yardstick = replica_seconds(oracle)
    result = TraceResult(world=world, scores={}, replays={})
    for spec in specs:
        policy = spec.build(world)
        run = oracle if spec.name == ORACLE else replay(world, policy)
        result.replays[spec.name] = run
        result.scores[spec.name] = score(run, yardstick)
        forecasts = getattr(policy, "forecasts", None)
        if isinstance(forecasts, list) and forecasts:
            # The first forecast was made for the initial replicas, before the first step.
            result.forecasts[spec.name] = np.asarray(forecasts[1:], dtype=np.float64)
    return result


def run_suite(
    paths: Sequence[Path],
    config: WorldConfig,
    policies: Sequence[str],
    forecast: ForecastSettings | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    jobs: int = 1,
) -> Suite:
    """Every trace through every policy, with aggregates per policy; ``jobs`` traces at a
    time in worker processes (the figures do not depend on it)."""
    replay_one = partial(run_trace, config=config, policies=policies, forecast=forecast)
    results: list[TraceResult] = []
    done = map_traces(replay_one, paths, jobs)
    for k, (path, result) in enumerate(zip(paths, done, strict=True), 1):
        results.append(result)
        if progress is not None:
            progress(k, len(paths), path.stem)
    aggregates = {name: aggregate([r.scores[name] for r in results]) for name in policies}
    return Suite(results, aggregates)
