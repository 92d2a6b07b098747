"""Invariants of the horizontal policy (Hypothesis) and its reasons."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.policy.horizontal import (
    HorizontalReason,
    LoadSignal,
    ReplicaState,
    decide_replicas,
)
from autoscaler.policy.settings import HorizontalSettings

NOW = 1_000_000.0
loads = st.floats(0, 2400, allow_nan=False)  # at most 960 replicas of 2.5
forecasts = st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False))
currents = st.integers(1, 300)
history = st.lists(
    st.tuples(st.floats(NOW - 600, NOW, allow_nan=False), st.integers(1, 300)), max_size=30
)


@st.composite
def policy_settings(draw: st.DrawFn) -> HorizontalSettings:
    lo = draw(st.integers(1, 50))
    hi = draw(st.integers(lo, 400))
    return HorizontalSettings.model_validate(
        {
            "min_replicas": lo,
            "max_replicas": hi,
            "target_utilisation": draw(st.floats(0.3, 1.0)),
            "scale_down_stabilisation_seconds": draw(st.sampled_from([0, 60, 300])),
            "max_step_up": draw(st.one_of(st.none(), st.integers(1, 20))),
            "max_step_down": draw(st.one_of(st.none(), st.integers(1, 20))),
        }
    )


def _state(current: int, recs: list[tuple[float, int]]) -> ReplicaState:
    return ReplicaState(current, 2.5, tuple(sorted(recs)))


@settings(max_examples=300, deadline=None)
@given(load=loads, forecast=forecasts, current=currents, recs=history, s=policy_settings())
def test_never_outside_min_max(
    load: float,
    forecast: float | None,
    current: int,
    recs: list[tuple[float, int]],
    s: HorizontalSettings,
) -> None:
    d = decide_replicas(LoadSignal(load, NOW, forecast), _state(current, recs), s, NOW)
    assert s.min_replicas <= d.replicas <= s.max_replicas


@settings(max_examples=200, deadline=None)
@given(current=currents, recs=history, s=policy_settings(), age=st.floats(121, 1e5))
def test_no_scale_down_on_missing_or_stale_data(
    current: int, recs: list[tuple[float, int]], s: HorizontalSettings, age: float
) -> None:
    state = _state(current, recs)
    missing = decide_replicas(LoadSignal(None, None, 0.0), state, s, NOW)
    stale = decide_replicas(LoadSignal(0.0, NOW - age, 0.0), state, s, NOW)
    for d in (missing, stale):
        assert d.replicas >= min(current, s.max_replicas)
    if s.min_replicas <= current <= s.max_replicas:
        assert missing.reason == HorizontalReason.NO_DATA
        assert stale.reason == HorizontalReason.STALE_DATA


@settings(max_examples=300, deadline=None)
@given(
    load=loads,
    f1=st.floats(0, 1e4, allow_nan=False),
    f2=st.floats(0, 1e4, allow_nan=False),
    current=currents,
    recs=history,
    s=policy_settings(),
)
def test_monotone_in_forecast_load(
    load: float,
    f1: float,
    f2: float,
    current: int,
    recs: list[tuple[float, int]],
    s: HorizontalSettings,
) -> None:
    low, high = sorted((f1, f2))
    state = _state(current, recs)
    a = decide_replicas(LoadSignal(load, NOW, low), state, s, NOW)
    b = decide_replicas(LoadSignal(load, NOW, high), state, s, NOW)
    assert a.replicas <= b.replicas


@settings(max_examples=300, deadline=None)
@given(load=loads, current=currents, recs=history)
def test_stabilisation_holds_the_window_high(
    load: float, current: int, recs: list[tuple[float, int]]
) -> None:
    s = HorizontalSettings.model_validate({"max_replicas": 1000})
    d = decide_replicas(LoadSignal(load, NOW, None), _state(current, recs), s, NOW)
    window_high = max([r for t, r in recs if t > NOW - 300] + [d.recommended])
    if d.recommended < current:
        assert d.replicas == max(d.recommended, min(current, window_high))
    else:
        assert d.replicas == d.recommended


def test_reasons_name_the_rule_that_decided() -> None:
    s = HorizontalSettings.model_validate({"max_replicas": 10, "max_step_up": 3})
    state = ReplicaState(4, 1.0)
    assert decide_replicas(LoadSignal(3.5, NOW, 6.0), state, s, NOW).reason == "forecast"
    d = decide_replicas(LoadSignal(5.5, NOW, 2.0), state, s, NOW)
    assert (d.replicas, d.reason) == (6, HorizontalReason.REACTIVE_FLOOR)
    d = decide_replicas(LoadSignal(9.0, NOW, None), state, s, NOW)
    assert (d.replicas, d.reason) == (7, HorizontalReason.STEP_UP_LIMIT)
    d = decide_replicas(LoadSignal(50.0, NOW, None), ReplicaState(9, 1.0), s, NOW)
    assert (d.replicas, d.reason) == (10, HorizontalReason.MAX_REPLICAS)
    held = ReplicaState(8, 1.0, ((NOW - 100, 8),))
    d = decide_replicas(LoadSignal(1.0, NOW, 1.0), held, s, NOW)
    assert (d.replicas, d.reason) == (8, HorizontalReason.STABILISED)
