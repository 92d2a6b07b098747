"""The Predictive Horizontal Pod Autoscaler's models (autoscaler/backtest/phpa.py) on series
with known answers, and the PHPA's decision on top of the HPA."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from autoscaler.backtest.phpa import (
    HoltWintersModel,
    HoltWintersSettings,
    LinearModel,
    LinearSettings,
    PhpaPolicy,
    holt_winters_forecast,
)
from autoscaler.backtest.reference import HpaPolicy
from autoscaler.backtest.world import World, replay


def test_holt_winters_predicts_a_pure_season_and_a_ramp() -> None:
    s = HoltWintersSettings()
    season = [10.0, 14.0, 18.0, 14.0, 10.0, 6.0]
    series = season * 5
    assert holt_winters_forecast(series, s) == pytest.approx(season[len(series) % 6], abs=1e-9)
    assert holt_winters_forecast(series[:-1], s) == pytest.approx(season[5], abs=1e-9)
    ramp = [3.0 + 2.0 * t for t in range(24)]
    assert holt_winters_forecast(ramp, s) == pytest.approx(3.0 + 2.0 * 24, abs=1e-9)
    # A season riding a ramp: both are carried forward.
    both = [season[t % 6] + 0.5 * t for t in range(30)]
    assert holt_winters_forecast(both, s) == pytest.approx(season[0] + 0.5 * 30, abs=1e-6)


def test_holt_winters_model_needs_sixteen_values_and_keeps_four_seasons() -> None:
    model = HoltWintersModel()
    assert model.minimum == 16
    answers = [model.observe_and_predict(15.0 * t, 5 + t % 6) for t in range(60)]
    assert answers[:15] == [0] * 15  # below statsmodels' minimum the PHPA answers 0
    assert answers[15] is not None and answers[15] > 0
    # Pruned to whole seasons, oldest first: between 4 seasons and 4 seasons + 5 values.
    assert 24 <= len(model._series) < 30
    # The season repeats exactly, so the prediction is the next value, rounded up.
    assert answers[-1] == 5 + 60 % 6


def test_linear_regression_extrapolates_a_replica_ramp_ten_seconds_ahead() -> None:
    model = LinearModel()
    # One replica more every 15 s sync: 10 s ahead of now is 2/3 of a replica more, rounded up.
    answers = [model.observe_and_predict(15.0 * t, 4 + t) for t in range(12)]
    assert answers[0] == 4  # one evaluation: returned as it is
    assert answers[1:] == [4 + t + 1 for t in range(1, 12)]
    assert len(model._history) == 6
    # A flat history predicts itself (no float slop rounds it up).
    flat = LinearModel(LinearSettings(look_ahead_seconds=600))
    assert [flat.observe_and_predict(15.0 * t, 7) for t in range(10)] == [7] * 10
    # Falling: the regression 10 s ahead is below now.
    falling = LinearModel()
    last = [falling.observe_and_predict(15.0 * t, 40 - 3 * t) for t in range(8)][-1]
    assert last == math.ceil(40 - 3 * 7 - 3 * 10 / 15)


def test_phpa_takes_the_larger_of_the_hpa_and_the_model(
    tiny_world: Callable[..., World],
) -> None:
    # Demand climbing steadily: the linear model sees the HPA's counts rise and asks for more
    # than the HPA, earlier; never less than the HPA on the same step.
    demand = [2.0 + 0.4 * i for i in range(80)]
    world = tiny_world(demand, startup=60)
    hpa = replay(world, HpaPolicy(world.info, 0.7))
    lin = replay(world, PhpaPolicy(world.info, 0.7, LinearModel()))
    # While the load climbs from its start: later, the PHPA's extra pods lower the
    # utilisation the HPA part sees, so the two histories part.
    assert (lin.replicas[:10] >= hpa.replicas[:10]).all()
    assert (lin.replicas[:10] > hpa.replicas[:10]).any()
    assert np.count_nonzero(lin.demand > lin.ready * lin.capacity) <= np.count_nonzero(
        hpa.demand > hpa.ready * hpa.capacity
    )


def test_phpa_on_flat_load_is_the_hpa(tiny_world: Callable[..., World]) -> None:
    world = tiny_world([7.0] * 60, startup=60)
    hpa = replay(world, HpaPolicy(world.info, 0.5))
    for model in (HoltWintersModel(), LinearModel()):
        run = replay(world, PhpaPolicy(world.info, 0.5, model))
        np.testing.assert_array_equal(run.replicas, hpa.replicas)
