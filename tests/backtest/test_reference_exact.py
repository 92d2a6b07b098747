"""The reference policies on small cases computed by hand from docs/architecture.md."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autoscaler.backtest.reference import HpaPolicy, OraclePolicy, StaticPolicy
from autoscaler.backtest.scoring import replica_seconds, score
from autoscaler.backtest.world import World, replay


def test_hpa_scale_up_with_startup_and_limits(tiny_world: Callable[..., World]) -> None:
    # capacity 1, startup 30 s (2 steps), T = 0.5; see the step-by-step in the comments.
    world = tiny_world([1, 1, 8, 8, 8, 8], startup=30)
    run = replay(world, HpaPolicy(world.info, 0.5))
    # initial ceil(1/1/0.5) = 2
    # s0,s1: u = 0.5 -> ratio 1 -> 2
    # s2: u = 1, mean(.5,.5,1) = 2/3 -> ceil(2 * 4/3) = 3
    # s3: mean(.5,.5,1,1) = .75 -> ceil(3 * 1.5) = 5
    # s4: ready 3 (pods of s3 not ready), mean(.5,1,1,1) = .875 -> ceil(5 * 1.75) = 9 (limit 10)
    # s5: ready 5, mean 1 -> ceil(9 * 2) = 18 (limit max(18, 13) = 18)
    assert run.initial == 2
    assert run.replicas.tolist() == [2, 2, 3, 5, 9, 18]
    assert run.ready.tolist() == [2, 2, 2, 2, 3, 5]
    s = score(run, oracle_replica_seconds=585.0)
    assert s.violation_pct == pytest.approx(100 * 4 / 6)
    assert s.unserved_pct == pytest.approx(100 * 20 / 34)
    assert s.actions == 4
    assert replica_seconds(run) == 39 * 15
    assert s.cost_vs_oracle == pytest.approx(1.0)


def test_hpa_scale_up_limit_of_four_or_double(tiny_world: Callable[..., World]) -> None:
    # From 1 replica at full saturation and T = 0.1, the ratio is 10 but one step may only go
    # to max(2 * 1, 1 + 4) = 5.
    world = tiny_world([10, 10], startup=60)
    policy = HpaPolicy(world.info, 1.0)
    run = replay(world, _Start(policy, 1))
    assert run.replicas.tolist()[0] == 1  # utilisation 1 at T = 1: ratio 1, no change
    world = tiny_world([10, 10, 10], startup=60)
    run = replay(world, _Start(HpaPolicy(world.info, 0.1), 1))
    # then 10 (limit max(10, 9)) and 20 (limit max(20, 14)) while the new pods start
    assert run.replicas.tolist() == [5, 10, 20]


def test_hpa_scale_down_waits_for_the_stabilisation_window(
    tiny_world: Callable[..., World],
) -> None:
    world = tiny_world([4, 4, 4] + [1] * 25, startup=0)
    run = replay(world, HpaPolicy(world.info, 0.5))
    # initial 8; recommendations 8, 8, 8, 7, 5, 4, 2, 2, ...; the 8s leave the 300 s window
    # (20 steps) at step 22.
    assert run.initial == 8
    expected = [8] * 22 + [7, 5, 4, 2, 2, 2]
    assert run.replicas.tolist() == expected


def test_hpa_tolerance_keeps_the_count(tiny_world: Callable[..., World]) -> None:
    # u = 0.54 at T = 0.5: ratio 1.08, inside the tolerance.
    world = tiny_world([10.8] * 5, startup=0)
    run = replay(world, _Start(HpaPolicy(world.info, 0.5), 20))
    assert run.replicas.tolist() == [20] * 5


def test_oracle_by_hand(tiny_world: Callable[..., World]) -> None:
    world = tiny_world([1, 1, 5, 1, 1, 1, 3, 1], startup=30)
    run = replay(world, OraclePolicy(world.demand, world.info))
    assert run.initial == 1
    assert run.replicas.tolist() == [5, 5, 5, 1, 3, 3, 3, 1]
    assert score(run, replica_seconds(run)).violation_pct == 0
    assert replica_seconds(run) == 26 * 15


def test_static_keeps_the_maximum(tiny_world: Callable[..., World]) -> None:
    world = tiny_world([1, 7.5, 2], startup=60, capacity=2)
    run = replay(world, StaticPolicy(world.demand, world.info))
    assert run.initial == 4
    assert run.replicas.tolist() == [4, 4, 4]


def test_newest_pods_are_removed_first(tiny_world: Callable[..., World]) -> None:
    # 1 ready pod, 3 created at s0 (ready at s4 with 60 s startup); dropping to 2 at s1 keeps
    # the ready one and one starting pod.
    world = tiny_world([1] * 6, startup=60)
    run = replay(world, _Script(1, [4, 2, 2, 2, 2, 2]))
    assert run.ready.tolist() == [1, 1, 1, 1, 2, 2]


class _Start:
    """Wraps a policy with a fixed initial count."""

    def __init__(self, inner: HpaPolicy, initial: int) -> None:
        self.inner = inner
        self._initial = initial

    def initial(self, history: object) -> int:
        return self._initial

    def decide(self, obs: object) -> int:
        return self.inner.decide(obs)  # type: ignore[arg-type]


class _Script:
    def __init__(self, initial: int, counts: list[int]) -> None:
        self._initial = initial
        self._counts = iter(counts)

    def initial(self, history: object) -> int:
        return self._initial

    def decide(self, obs: object) -> int:
        return next(self._counts)
