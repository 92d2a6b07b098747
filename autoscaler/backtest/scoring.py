"""The figures of ``docs/architecture.md`` for one replay, and their aggregates over traces."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from autoscaler.backtest.world import Replay

__all__ = ["Aggregate", "Score", "aggregate", "replica_seconds", "score"]


@dataclass(frozen=True)
class Score:
    """Figures of one policy on one trace."""

    violation_pct: float
    unserved_pct: float
    cost_vs_oracle: float
    actions: int
    replica_seconds: float
    actions_per_day: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        """The figures as plain JSON values."""
        return asdict(self)


@dataclass(frozen=True)
class Aggregate:
    """Figures of one policy over a set of traces."""

    traces: int
    violation_pct: float  # mean
    unserved_pct: float  # mean
    cost_vs_oracle: float  # geometric mean
    actions: float  # mean
    actions_per_day: float = 0.0  # mean

    def as_dict(self) -> dict[str, float | int]:
        """The figures as plain JSON values."""
        return asdict(self)


def replica_seconds(run: Replay) -> float:
    """Seconds of every created pod over the scored steps, weighted by the pod's size."""
    return float((run.replicas * run.sizes()).sum()) * run.step_seconds


def score(run: Replay, oracle_replica_seconds: float) -> Score:
    """Score ``run`` against the oracle's cost on the same world."""
    capacity = run.ready.astype(np.float64) * run.capacity * run.sizes()
    served = np.minimum(run.demand, capacity)
    violations = int(np.count_nonzero(run.demand > capacity))
    total = float(run.demand.sum())
    unserved = float((run.demand - served).sum())
    previous = np.concatenate([[run.initial], run.replicas[:-1]])
    cost = replica_seconds(run)
    actions = int(np.count_nonzero(run.replicas != previous))
    days = len(run.demand) * run.step_seconds / 86_400.0
    return Score(
        violation_pct=100.0 * violations / len(run.demand),
        unserved_pct=100.0 * unserved / total if total > 0 else 0.0,
        cost_vs_oracle=cost / oracle_replica_seconds,
        actions=actions,
        replica_seconds=cost,
        actions_per_day=actions / days if days > 0 else 0.0,
    )


def aggregate(scores: Sequence[Score]) -> Aggregate:
    """Means of violations, unserved demand and actions; geometric mean of relative cost."""
    if not scores:
        raise ValueError("no score to aggregate")
    n = len(scores)
    return Aggregate(
        traces=n,
        violation_pct=sum(s.violation_pct for s in scores) / n,
        unserved_pct=sum(s.unserved_pct for s in scores) / n,
        cost_vs_oracle=math.exp(sum(math.log(s.cost_vs_oracle) for s in scores) / n),
        actions=sum(s.actions for s in scores) / n,
        actions_per_day=sum(s.actions_per_day for s in scores) / n,
    )
