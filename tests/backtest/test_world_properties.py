"""Invariants of the world model and the honesty of the replay."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.backtest.foresight import ForesightPolicy
from autoscaler.backtest.observation import DemandHistory, Observation
from autoscaler.backtest.reference import OraclePolicy
from autoscaler.backtest.scoring import replica_seconds, score
from autoscaler.backtest.trace import Trace, load_trace, sample_and_hold
from autoscaler.backtest.world import World, WorldConfig, build_world, replay
from tests.support.traces import write_daily_trace

demands = st.lists(st.floats(0, 50, allow_nan=False), min_size=2, max_size=60)
# A decision follows the step it saw, so a pod serves one step after it is created at the
# earliest; with startup 0 the oracle's one-step lookahead is then one step short.
startups = st.sampled_from([15, 30, 50, 60, 120, 300])


@settings(max_examples=60, deadline=None)
@given(demand=demands, startup=startups)
def test_oracle_never_violates_after_warm_up(
    tiny_world: Callable[..., World], demand: list[float], startup: int
) -> None:
    world = tiny_world(demand, startup=startup)
    run = replay(world, OraclePolicy(world.demand, world.info))
    steps = world.config.startup_steps
    late = run.demand[steps:] > run.ready[steps:] * run.capacity
    assert not late.any()
    assert (run.replicas >= 1).all()


class _Spy:
    """Records what it is shown and checks it is exactly the past."""

    def __init__(self, demand: np.ndarray) -> None:
        self.demand = demand
        self.steps = 0

    def initial(self, history: DemandHistory) -> int:
        return 1

    def decide(self, obs: Observation) -> int:
        seen = obs.history.values
        assert len(seen) == self.steps + 1
        np.testing.assert_array_equal(seen, self.demand[: len(seen)])
        # Nothing past now exists in the buffer the view belongs to.
        assert seen.base is not None
        assert np.isnan(np.asarray(seen.base)[len(seen) :]).all()
        assert not seen.flags.writeable
        self.steps += 1
        return 1 + self.steps % 3


@settings(max_examples=30, deadline=None)
@given(demand=demands)
def test_a_policy_sees_only_the_past(tiny_world: Callable[..., World], demand: list[float]) -> None:
    world = tiny_world(demand, startup=60)
    spy = _Spy(world.demand)
    replay(world, spy)
    assert spy.steps == len(demand)


def test_sample_and_hold_takes_the_last_value_at_or_before_each_step() -> None:
    trace = Trace(
        "t",
        times=np.array([0.0, 20.0, 40.0, 61.0]),
        values=np.array([1.0, -2.0, 3.0, 4.0]),
    )
    assert sample_and_hold(trace, 15).tolist() == [1.0, 1.0, 0.0, 3.0, 3.0]


def test_warm_up_defaults_to_half_a_short_trace(tmp_path: Path) -> None:
    trace = write_daily_trace(tmp_path / "daily.csv", days=3, step_seconds=60)
    world = build_world(load_trace(trace), WorldConfig())
    duration = len(world.demand) * 15
    assert abs(world.warmup_steps * 15 - duration / 2) <= 15
    assert world.capacity == float(np.percentile(world.demand, 99)) / 20


def test_foresight_decisions_do_not_depend_on_the_future(tmp_path: Path) -> None:
    trace = load_trace(write_daily_trace(tmp_path / "daily.csv", days=4))
    config = WorldConfig(warmup_seconds=2 * 86_400)
    world = build_world(trace, config)
    cut = world.warmup_steps + 2000
    changed = world.demand.copy()
    changed[cut + 1 :] = changed[cut + 1 :][::-1] * 3  # a different future
    other = World(world.name, config, world.start_time, changed, world.capacity, world.warmup_steps)
    short = World(
        world.name,
        config,
        world.start_time,
        world.demand[: cut + 1500],
        world.capacity,
        world.warmup_steps,
    )
    short_other = World(
        world.name,
        config,
        world.start_time,
        other.demand[: cut + 1500],
        world.capacity,
        world.warmup_steps,
    )
    a = replay(short, ForesightPolicy(short.info))
    b = replay(short_other, ForesightPolicy(short_other.info))
    k = cut - world.warmup_steps
    np.testing.assert_array_equal(a.replicas[: k + 1], b.replicas[: k + 1])
    assert not np.array_equal(a.replicas, b.replicas)


def test_scores_are_relative_to_the_oracle(tiny_world: Callable[..., World]) -> None:
    world = tiny_world([1, 2, 3, 2, 1], startup=15)
    run = replay(world, OraclePolicy(world.demand, world.info))
    s = score(run, replica_seconds(run))
    assert s.cost_vs_oracle == 1.0
    # Lookahead of startup/15 + 1 = 2 steps: pods for each rise are ready in time.
    assert run.replicas.tolist() == [2, 3, 3, 2, 1]
    assert run.ready.tolist() == [1, 2, 3, 3, 2]
    assert s.unserved_pct == 0 and s.violation_pct == 0 and s.actions == 4
    assert math.isclose(replica_seconds(run), 11 * 15)
