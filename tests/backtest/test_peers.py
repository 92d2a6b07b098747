"""The predictive peers in the world: no look-ahead, and behaviour with known answers."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from autoscaler.backtest.ehpa import EhpaPolicy
from autoscaler.backtest.foresight import ForesightPolicy
from autoscaler.backtest.hpa_forecast import HpaOnForecastPolicy
from autoscaler.backtest.policies import PolicyError, make_policy
from autoscaler.backtest.reference import HpaPolicy
from autoscaler.backtest.scoring import replica_seconds, score
from autoscaler.backtest.trace import load_trace
from autoscaler.backtest.world import World, WorldConfig, build_world, replay
from tests.support.traces import write_daily_trace

PEERS = ["ehpa@0.7", "phpa-hw@0.7", "phpa-lin@0.7", "hpa-on-forecast@0.7"]


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory) -> World:
    path = write_daily_trace(tmp_path_factory.mktemp("peers") / "daily.csv", days=4)
    return build_world(load_trace(path), WorldConfig(warmup_seconds=3 * 86_400))


@pytest.mark.parametrize("name", PEERS)
def test_a_peer_decides_the_same_whatever_the_future(daily: World, name: str) -> None:
    cut = daily.warmup_steps + 700
    changed = daily.demand.copy()
    changed[cut + 1 :] = changed[cut + 1 :][::-1] * 3  # a different future

    def truncated(demand: np.ndarray) -> World:
        return World(
            daily.name,
            daily.config,
            daily.start_time,
            demand[: cut + 400],
            daily.capacity,
            daily.warmup_steps,
        )

    spec = make_policy(name)
    a = replay(truncated(daily.demand), spec.build(truncated(daily.demand)))
    b = replay(truncated(changed), spec.build(truncated(changed)))
    k = cut - daily.warmup_steps
    np.testing.assert_array_equal(a.replicas[: k + 1], b.replicas[: k + 1])
    assert not np.array_equal(a.replicas, b.replicas)  # the test can tell futures apart


def test_ehpa_predicts_a_daily_trace_and_scales_ahead_of_the_hpa(daily: World) -> None:
    config = WorldConfig(startup_seconds=300, warmup_seconds=3 * 86_400)
    world = World(
        daily.name, config, daily.start_time, daily.demand, daily.capacity, daily.warmup_steps
    )
    ehpa = EhpaPolicy(world.info, 0.7)
    run = replay(world, ehpa)
    hpa = replay(world, HpaPolicy(world.info, 0.7))
    assert not any(math.isnan(v) for v in ehpa.predictions)  # periodic: always a prediction
    # The metric is the largest prediction of the next hour: never below the load an hour
    # later by much (the trace's noise is gamma(2, 2) on a 40 ± 30 cycle).
    demand = world.replay_demand
    hour = 240
    ahead = [demand[i : i + hour].mean() for i in range(len(demand) - hour)]
    assert np.mean(np.asarray(ehpa.predictions[: len(ahead)]) >= np.asarray(ahead)) > 0.95
    oracle = replica_seconds(replay(world, make_policy("oracle").build(world)))
    assert score(run, oracle).violation_pct < score(hpa, oracle).violation_pct


def test_ehpa_on_a_series_that_is_not_periodic_is_the_hpa(
    tiny_world: Callable[..., World],
) -> None:
    # A rising trend with noise: the slowest component is the strongest, so no daily cycle.
    # (Noise alone can pass Crane's test: with two days of history, by chance half the time.)
    rng = np.random.default_rng(5)
    demand = list(10 + np.arange(3 * 5760) / 500 + rng.gamma(2.0, 2.0, 3 * 5760))
    world = tiny_world(demand, startup=60)
    world = World(world.name, world.config, world.start_time, world.demand, 1.0, 2 * 5760 + 7)
    ehpa = EhpaPolicy(world.info, 0.6)
    a = replay(world, ehpa)
    b = replay(world, HpaPolicy(world.info, 0.6))
    assert all(math.isnan(v) for v in ehpa.predictions)
    np.testing.assert_array_equal(a.replicas, b.replicas)


def test_ehpa_metric_is_the_largest_prediction_of_the_window(
    tiny_world: Callable[..., World],
) -> None:
    # A pure daily sine at 15 s steps; 3 days of history: the metric at a step is the largest
    # value of the next hour of the sine (sampled each minute) times 1.01.
    n = 3 * 5760 + 400
    t = np.arange(n)
    demand = 50 + 40 * np.sin(2 * np.pi * t / 5760)
    world = tiny_world(list(demand), startup=60)
    first = 3 * 5760 + 3  # a step just after a whole minute past the third day
    world = World(world.name, world.config, world.start_time, world.demand, 1.0, first)
    ehpa = EhpaPolicy(world.info, 0.7)
    replay(world, ehpa)
    for j in (0, 100, 396):
        i = first + j
        window = 50 + 40 * np.sin(2 * np.pi * np.arange(i, i + 241) / 5760)
        assert ehpa.predictions[j] == pytest.approx(window.max() * 1.01, rel=2e-3)


def test_hpa_on_forecast_reads_foresights_forecast(daily: World) -> None:
    short = World(
        daily.name,
        daily.config,
        daily.start_time,
        daily.demand[: daily.warmup_steps + 600],
        daily.capacity,
        daily.warmup_steps,
    )
    policy = HpaOnForecastPolicy(short.info, 0.5)
    run = replay(short, policy)
    reference = ForesightPolicy(short.info)
    replay(short, reference)
    np.testing.assert_array_equal(policy.forecasts, reference.forecasts)
    # Where the HPA acted on the metric, it asked for ceil(forecast / (0.5 × capacity)).
    per_pod = 0.5 * short.capacity
    previous = np.concatenate([[run.initial], run.replicas[:-1]])
    asked = np.ceil(np.asarray(policy.forecasts[1:]) / per_pod - 1e-9)
    up = run.replicas > previous
    assert up.any()
    assert (run.replicas[up] <= asked[up]).all()


def test_hpa_on_forecast_on_flat_load_holds_load_over_target(
    tiny_world: Callable[..., World],
) -> None:
    world = tiny_world([12.0] * 40, startup=60, capacity=2.0)
    run = replay(world, HpaOnForecastPolicy(world.info, 0.75))
    # Too little history to forecast: the forecast is the load, 12 / (0.75 × 2) = 8 pods.
    assert run.initial == 8
    assert set(run.replicas.tolist()) == {8}


def test_peer_names_need_a_target_in_range() -> None:
    for bad in ("ehpa@0", "phpa-hw@1.5", "phpa-lin@x", "hpa-on-forecast@-1"):
        with pytest.raises(PolicyError, match="must be a number in"):
            make_policy(bad)
    with pytest.raises(PolicyError, match="unknown policy"):
        make_policy("keda@0.5")
    with pytest.raises(PolicyError, match="unknown forecast model"):
        make_policy("foresight:nope")
    assert make_policy("foresight:naive").name == "foresight:naive"
