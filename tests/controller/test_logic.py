"""Pure parts of the controller: replica plans, limits, history, forecast error, conditions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.controller.decide import (
    ConditionValue,
    HorizontalPlan,
    horizontal_settings,
    plan_replicas,
    scaled_limits,
)
from autoscaler.controller.forecasting import KeptForecast
from autoscaler.controller.history import GridHistory
from autoscaler.controller.kube_actions import format_resource, round_request
from autoscaler.controller.status import Conditions
from autoscaler.controller.workload import WorkloadView
from autoscaler.forecast.settings import ForecastSettings
from autoscaler.policy.horizontal import LoadSignal, ReplicaState
from autoscaler.policy.settings import HorizontalSettings
from autoscaler.resource.model import ForecastSpec, HorizontalSpec
from collectors.cluster_model import ContainerInfo, PodInfo

NOW = 1_767_600_000.0


def _pod(name: str, cpu: float | None) -> PodInfo:
    requests = {} if cpu is None else {"cpu": cpu}
    return PodInfo(
        "shop",
        name,
        name,
        "node",
        "Running",
        True,
        ("ReplicaSet", "web-1"),
        {},
        {},
        "",
        (ContainerInfo("app", requests, {}),),
        NOW - 600,
    )


def _view(replicas: int, cpu: float | None = 0.25) -> WorkloadView:
    # At least one pod: its request says what a replica costs even at zero replicas.
    pods = tuple(_pod(f"web-{i}", cpu) for i in range(max(1, replicas)))
    return WorkloadView("Deployment", "shop", "web", replicas, replicas, pods)


def _spec(**fields: object) -> HorizontalSpec:
    return HorizontalSpec.model_validate({"minReplicas": 2, "maxReplicas": 10, **fields})


def test_replicas_follow_the_forecast_at_the_target_utilisation() -> None:
    spec = _spec(metric={"type": "CPU", "targetUtilization": 50})
    settings = horizontal_settings(spec, HorizontalSettings())
    plan = plan_replicas(
        spec, _view(2), LoadSignal(0.4, NOW, 1.0), ReplicaState(2, 1.0), settings, NOW
    )
    assert isinstance(plan, HorizontalPlan)
    assert plan.decision.replicas == 8  # 1 core / (250m x 50 %)
    assert plan.limited.status == "False"
    assert "forecast" in plan.message


def test_limits_are_reported_as_scaling_limited() -> None:
    spec = _spec()
    settings = horizontal_settings(spec, HorizontalSettings())
    plan = plan_replicas(
        spec, _view(2), LoadSignal(5.0, NOW, 6.0), ReplicaState(2, 1.0), settings, NOW
    )
    assert isinstance(plan, HorizontalPlan)
    assert plan.decision.replicas == 10
    assert (plan.limited.status, plan.limited.reason) == ("True", "MaxReplicas")
    assert "limited to 10" in plan.limited.message


def test_missing_requests_make_a_condition_not_a_crash() -> None:
    spec = _spec()
    settings = horizontal_settings(spec, HorizontalSettings())
    plan = plan_replicas(
        spec, _view(2, cpu=None), LoadSignal(1.0, NOW, 1.0), ReplicaState(2, 1.0), settings, NOW
    )
    assert plan == ConditionValue(
        "False",
        "MissingRequests",
        "pods of Deployment/web have no cpu request; set one or use a Query metric",
    )


def test_stale_load_holds_and_says_so() -> None:
    spec = _spec()
    settings = horizontal_settings(spec, HorizontalSettings())
    plan = plan_replicas(
        spec, _view(6), LoadSignal(0.1, NOW - 600, 0.1), ReplicaState(6, 1.0), settings, NOW
    )
    assert isinstance(plan, HorizontalPlan)
    assert plan.decision.replicas == 6
    assert plan.able.reason == "FailStatic"


@given(
    load=st.one_of(st.none(), st.floats(0, 1e4)),
    peak=st.one_of(st.none(), st.floats(0, 1e4)),
    current=st.integers(0, 50),
    low=st.integers(1, 20),
    span=st.integers(0, 30),
    age=st.floats(0, 1000),
)
def test_plans_never_leave_the_bounds(
    load: float | None, peak: float | None, current: int, low: int, span: int, age: float
) -> None:
    spec = _spec(minReplicas=low, maxReplicas=low + span)
    settings = horizontal_settings(spec, HorizontalSettings())
    plan = plan_replicas(
        spec,
        _view(current),
        LoadSignal(load, NOW - age, peak),
        ReplicaState(current, 1.0),
        settings,
        NOW,
    )
    assert isinstance(plan, HorizontalPlan)
    assert low <= plan.decision.replicas <= low + span
    if load is None or age > settings.stale_after_seconds:
        # Fail-static: never down on missing data (up only to reach the minimum).
        assert plan.decision.replicas >= min(current, low + span)


def test_limits_move_with_requests() -> None:
    requests, limits = {"memory": 128.0, "cpu": 0.1}, {"memory": 512.0}
    assert scaled_limits(requests, limits, {"memory": 256.0, "cpu": 0.2}, None) == {
        "memory": 1024.0
    }
    assert scaled_limits(requests, limits, {"cpu": 0.2}, 2.0) == {"cpu": 0.4}


def test_requests_round_up_to_what_people_write() -> None:
    assert round_request("cpu", 0.1234) == 0.124
    assert format_resource("cpu", 0.1234) == "124m"
    assert format_resource("memory", 185_936_534) == "178Mi"
    assert format_resource("memory", 2 * 2**30) == "2Gi"


def test_grid_history_keeps_the_latest_value_per_step_and_gaps() -> None:
    history = GridHistory(60, keep_seconds=600)
    history.fill(NOW - 300, np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    history.observe(NOW + 10, 7.0)
    history.observe(NOW + 50, 8.0)  # same step: the latest wins
    history.observe(NOW + 200, 9.0)  # two steps later: a gap between
    series = history.series()
    assert series is not None
    assert series.start_time == NOW - 300
    assert np.array_equal(series.values, [1, 2, 3, 4, 5, 8, np.nan, np.nan, 9], equal_nan=True)
    for i in range(20):
        history.observe(NOW + 300 + 60 * i, 1.0)
    series = history.series()
    assert series is not None and len(series.values) == 10  # ten minutes kept


def test_grid_history_holds_a_sparser_load_for_the_lookback() -> None:
    # Decisions every 30 s on a 15 s grid: the cell between two holds the earlier value, as
    # the range query that filled the history does; beyond the lookback it is a gap.
    history = GridHistory(15, keep_seconds=3600, hold_seconds=60)
    history.fill(NOW - 30, np.array([1.0, 2.0]))
    history.observe(NOW + 30, 3.0)
    history.observe(NOW + 60, 4.0)
    history.observe(NOW + 180, 5.0)
    series = history.series()
    assert series is not None
    expected = [1, 2, 2, 2, 3, 3, 4, 4, 4, 4, *[np.nan] * 4, 5]
    assert np.array_equal(series.values, expected, equal_nan=True)


def test_forecast_error_compares_each_peak_with_what_came() -> None:
    kept = KeptForecast(ForecastSpec(horizon_seconds=120), ForecastSettings(), 60)
    history = GridHistory(60, 86_400)
    values = 10 + np.sin(np.arange(3000) / 100)
    history.fill(NOW - 3000 * 60, values)
    for i in range(10):
        history.observe(NOW + 60 * i, 10.0)
        series = history.series()
        assert series is not None
        peak = kept.peak(series, 10.0)
        assert math.isfinite(peak) and peak >= 10.0
    assert kept.error_ratio is not None and 0 <= kept.error_ratio < 0.5
    assert kept.ready  # 50 hours of history: the configured model, not the fallback
    short = KeptForecast(ForecastSpec(horizon_seconds=120), ForecastSettings(), 60)
    recent = GridHistory(60, 86_400)
    recent.fill(NOW - 600, np.full(10, 3.0))
    series = recent.series()
    assert series is not None
    short.peak(series, 3.0)
    assert not short.ready and short.choice.reason.value == "short_history"


def test_condition_transition_time_changes_only_with_the_status() -> None:
    conditions = Conditions()
    conditions.set("AbleToScale", ConditionValue("True", "A", "x"), NOW)
    conditions.set("AbleToScale", ConditionValue("True", "B", "y"), NOW + 60)
    [c] = conditions.as_list()
    assert c.last_transition_time == "2026-01-05T08:00:00Z" and c.reason == "B"
    conditions.set("AbleToScale", ConditionValue("False", "C", "z"), NOW + 120)
    [c] = conditions.as_list()
    assert c.last_transition_time == "2026-01-05T08:02:00Z"


@pytest.mark.parametrize("utilisation", [1, 50, 100])
def test_settings_from_the_spec(utilisation: int) -> None:
    spec = _spec(metric={"type": "CPU", "targetUtilization": utilisation}, maxStepUp=3)
    settings = horizontal_settings(spec, HorizontalSettings())
    assert settings.target_utilisation == utilisation / 100
    assert (settings.min_replicas, settings.max_replicas, settings.max_step_up) == (2, 10, 3)
