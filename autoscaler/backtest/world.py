"""The world model of ``docs/architecture.md`` ("The backtest's world model"): a grid, a
capacity per replica, and pods that take time to start.

One step of the replay, in order:

1. the demand of the step becomes known (appended to the policy's history);
2. the pods that are ready serve it: served = min(d, ready × c); the step violates the SLO
   when d > ready × c;
3. the observed utilisation is the mean of min(d / (ready × c), 1) over the steps of the last
   60 s of the replay (this step and the three before it);
4. the policy is called and returns the replica count it wants (at least 1);
5. pods are created (they cost from this step and are ready ``startup`` seconds later) or the
   newest pods are removed (they cost nothing from this step on);
6. a policy that also sizes pods (a ``pod_size`` attribute: the pod's request as a multiple
   of the capacity per replica, 1 for every replica policy) resizes every pod in place, as
   ``pods/resize`` does: the next step's pods serve and cost that much each.

The replica count after step 5, times the pod size that served the step, is what the step
costs. The replay starts after the warm-up, with the policy's initial replicas all ready.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from autoscaler.backtest.observation import DemandHistory, Observation, ReplicaPolicy, WorkloadInfo
from autoscaler.backtest.trace import Trace, sample_and_hold

__all__ = ["Replay", "World", "WorldConfig", "WorldError", "build_world", "replay"]

DAY = 86_400.0
UTILISATION_WINDOW_SECONDS = 60.0


class WorldError(Exception):
    """A trace cannot be replayed with the given world settings."""


@dataclass(frozen=True)
class WorldConfig:
    """The flags of the world model (seconds unless named otherwise)."""

    step_seconds: float = 15.0
    startup_seconds: float = 60.0
    peak_replicas: int = 20
    warmup_seconds: float | None = None  # None: 7 days, or half the trace if that is shorter

    def __post_init__(self) -> None:
        if self.step_seconds <= 0:
            raise WorldError(f"step must be > 0 s, got {self.step_seconds}")
        if self.startup_seconds < 0:
            raise WorldError(f"startup must be >= 0 s, got {self.startup_seconds}")
        if self.peak_replicas < 1:
            raise WorldError(f"peak replicas must be >= 1, got {self.peak_replicas}")
        if self.warmup_seconds is not None and self.warmup_seconds < 0:
            raise WorldError(f"warm-up must be >= 0 s, got {self.warmup_seconds}")

    @property
    def startup_steps(self) -> int:
        """Steps between creating a pod and the first step it serves."""
        return math.ceil(self.startup_seconds / self.step_seconds - 1e-9)


@dataclass(frozen=True)
class World:
    """A trace on the grid, with everything derived from it once."""

    name: str
    config: WorldConfig
    start_time: float
    demand: NDArray[np.float64]
    capacity: float
    warmup_steps: int

    @property
    def info(self) -> WorkloadInfo:
        """What a non-clairvoyant policy is told about the workload."""
        return WorkloadInfo(
            capacity_per_replica=self.capacity,
            step_seconds=self.config.step_seconds,
            startup_seconds=self.config.startup_seconds,
        )

    @property
    def replay_demand(self) -> NDArray[np.float64]:
        """Demand of the scored steps."""
        return self.demand[self.warmup_steps :]


def build_world(trace: Trace, config: WorldConfig) -> World:
    """Put ``trace`` on the grid and derive the capacity per replica and the warm-up."""
    demand = sample_and_hold(trace, config.step_seconds)
    p99 = float(np.percentile(demand, 99))
    if p99 <= 0:
        raise WorldError(f"{trace.name}: the 99th percentile of demand is 0; nothing to scale")
    duration = float(trace.times[-1] - trace.times[0])
    warmup = config.warmup_seconds
    if warmup is None:
        warmup = min(7 * DAY, duration / 2)
    warmup_steps = math.ceil(warmup / config.step_seconds - 1e-9)
    if warmup_steps >= len(demand):
        raise WorldError(
            f"{trace.name}: warm-up of {warmup:.0f} s leaves no step to replay "
            f"(trace spans {duration:.0f} s)"
        )
    return World(
        name=trace.name,
        config=config,
        start_time=float(trace.times[0]),
        demand=demand,
        capacity=p99 / config.peak_replicas,
        warmup_steps=warmup_steps,
    )


@dataclass(frozen=True)
class Replay:
    """What happened at every scored step."""

    demand: NDArray[np.float64]
    replicas: NDArray[np.int64]  # after the step's decision: what the step costs
    ready: NDArray[np.int64]  # pods serving the step
    initial: int
    capacity: float
    step_seconds: float
    # Each step's pod size as a multiple of ``capacity`` (None: every pod is 1 throughout).
    pod_size: NDArray[np.float64] | None = None

    def sizes(self) -> NDArray[np.float64]:
        """The pod size of every scored step."""
        return self.pod_size if self.pod_size is not None else np.ones(len(self.demand))


def replay(world: World, policy: ReplicaPolicy) -> Replay:
    """Run ``policy`` over the scored steps of ``world``."""
    step = world.config.step_seconds
    demand = world.demand
    n = len(demand)
    first = world.warmup_steps
    c = world.capacity
    startup_steps = world.config.startup_steps
    window = max(1, round(UTILISATION_WINDOW_SECONDS / step))

    history = DemandHistory(world.start_time, step, n)
    history.extend(demand[: first + 1])
    initial = max(1, int(policy.initial(history)))

    # Pods as a stack of [creation step, count], oldest at the bottom; the initial pods were
    # created long enough ago to be ready.
    stack: list[list[int]] = [[-(10**12), initial]]
    total = initial
    scored = n - first
    replicas = np.empty(scored, dtype=np.int64)
    ready_out = np.empty(scored, dtype=np.int64)
    sizes = np.empty(scored, dtype=np.float64)
    size = float(getattr(policy, "pod_size", 1.0))
    recent: list[float] = []

    for j, i in enumerate(range(first, n)):
        if i > first:
            history.append(float(demand[i]))
        d = float(demand[i])
        not_ready = 0
        k = len(stack) - 1
        while k >= 0 and stack[k][0] > i - startup_steps:
            not_ready += stack[k][1]
            k -= 1
        ready = total - not_ready
        capacity = ready * c * size
        u = (1.0 if d > 0 else 0.0) if capacity <= 0 else min(d / capacity, 1.0)
        recent.append(u)
        if len(recent) > window:
            del recent[0]
        utilisation = sum(recent) / len(recent)
        obs = Observation(
            now=world.start_time + i * step,
            history=history,
            utilisation=utilisation,
            current=total,
            ready=ready,
        )
        desired = max(1, int(policy.decide(obs)))
        if desired > total:
            stack.append([i, desired - total])
        else:
            drop = total - desired
            while drop > 0:
                top = stack[-1]
                taken = min(drop, top[1])
                top[1] -= taken
                drop -= taken
                if top[1] == 0:
                    stack.pop()
        total = desired
        replicas[j] = total
        ready_out[j] = ready
        sizes[j] = size  # the size that served this step
        size = float(getattr(policy, "pod_size", 1.0))
    return Replay(
        demand=demand[first:].copy(),
        replicas=replicas,
        ready=ready_out,
        initial=initial,
        capacity=c,
        step_seconds=step,
        pod_size=sizes if np.any(sizes != 1.0) else None,
    )
