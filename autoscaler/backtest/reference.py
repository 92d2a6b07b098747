"""The reference policies of ``docs/architecture.md`` (the backtest's world model),
implemented to the letter.

``hpa@T`` is the Kubernetes HPA algorithm on observed utilisation; ``oracle`` and ``static``
are clairvoyant (they are given the whole demand when built) and exist only as yardsticks.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.typing import NDArray

from autoscaler.backtest.observation import DemandHistory, Observation, WorkloadInfo

__all__ = ["HPA_MAX_REPLICAS", "HpaPolicy", "OraclePolicy", "StaticPolicy"]

HPA_TOLERANCE = 0.1
HPA_MAX_REPLICAS = 1_000
HPA_STABILISATION_SECONDS = 300.0


class HpaPolicy:
    """The Kubernetes HPA with target utilisation ``target``."""

    def __init__(self, info: WorkloadInfo, target: float) -> None:
        if not 0 < target <= 1:
            raise ValueError(f"HPA target utilisation must be in (0, 1], got {target}")
        self.target = target
        self._capacity = info.capacity_per_replica
        # Recommendations younger than the window, as (time, replicas); the window is
        # (now - 300 s, now], as the HPA compares with "after now - window".
        self._recommendations: deque[tuple[float, int]] = deque()

    def initial(self, history: DemandHistory) -> int:
        return math.ceil(history.last() / self._capacity / self.target)

    def decide(self, obs: Observation) -> int:
        return self.settle(self.proposal(obs), obs)

    def proposal(self, obs: Observation) -> int:
        """The replicas the utilisation metric asks for, before limits and stabilisation."""
        current = obs.current
        ratio = obs.utilisation / self.target
        return current if abs(ratio - 1.0) <= HPA_TOLERANCE else math.ceil(current * ratio)

    def value_proposal(self, value: float, obs: Observation) -> int:
        """The replicas an ``External`` metric with an ``AverageValue`` target asks for: the
        metric is a total load, the target per pod is ``target`` × the capacity per replica.

        As the HPA does for such a metric: ratio = value / (target per pod × current); no
        change within the tolerance, else ceil(value / target per pod).
        """
        per_pod = self.target * self._capacity
        current = obs.current
        ratio = value / (per_pod * current)
        if abs(ratio - 1.0) <= HPA_TOLERANCE:
            return current
        return math.ceil(value / per_pod - 1e-9)

    def settle(self, desired: int, obs: Observation) -> int:
        """The HPA's scale-up limit and scale-down stabilisation applied to ``desired`` (the
        largest proposal over the HPA's metrics); records the recommendation."""
        current = obs.current
        desired = min(desired, max(2 * current, current + 4), HPA_MAX_REPLICAS)
        cutoff = obs.now - HPA_STABILISATION_SECONDS
        recs = self._recommendations
        while recs and recs[0][0] <= cutoff:
            recs.popleft()
        recs.append((obs.now, desired))
        if desired < current:
            desired = min(current, max(r for _, r in recs))
        return desired


class OraclePolicy:
    """Clairvoyant: enough replicas for the peak of the next ``startup/step + 1`` steps."""

    def __init__(self, demand: NDArray[np.float64], info: WorkloadInfo) -> None:
        self._capacity = info.capacity_per_replica
        lookahead = math.ceil(info.startup_seconds / info.step_seconds - 1e-9) + 1
        # Peak of demand[i : i + lookahead] for every step i (clipped at the end).
        n = len(demand)
        padded = np.concatenate([demand, np.full(lookahead - 1, -np.inf)])
        windows = np.lib.stride_tricks.sliding_window_view(padded, lookahead)
        self._peaks = windows.max(axis=1)[:n]

    def initial(self, history: DemandHistory) -> int:
        return max(1, math.ceil(history.last() / self._capacity))

    def decide(self, obs: Observation) -> int:
        i = len(obs.history) - 1
        return max(1, math.ceil(float(self._peaks[i]) / self._capacity))


class StaticPolicy:
    """Clairvoyant: the replicas for the trace's maximum, all the time."""

    def __init__(self, demand: NDArray[np.float64], info: WorkloadInfo) -> None:
        self._replicas = max(1, math.ceil(float(demand.max()) / info.capacity_per_replica))

    def initial(self, history: DemandHistory) -> int:
        return self._replicas

    def decide(self, obs: Observation) -> int:
        return self._replicas
