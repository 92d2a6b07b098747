"""The vertical policy: histogram, forecast need, bounds, hysteresis and OOM bumps."""

from __future__ import annotations

import numpy as np
import pytest

from autoscaler.policy.settings import VerticalSettings
from autoscaler.policy.vertical import (
    DecayingHistogram,
    VerticalReason,
    forecast_need,
    oom_bump,
    recommend_request,
)

MIB = 2**20
S = VerticalSettings.model_validate({})


def _histogram(values: list[float], start: float = 0.0, every: float = 60.0) -> DecayingHistogram:
    h = DecayingHistogram(24 * 3600, first_bucket=0.01)
    for k, v in enumerate(values):
        h.add(v, start + k * every)
    return h


def test_percentiles_follow_the_samples_within_a_bucket() -> None:
    h = _histogram([float(v) for v in range(1, 101)])
    assert h.percentile(0.9) == pytest.approx(90, rel=0.06)
    assert h.percentile(0.5) == pytest.approx(50, rel=0.06)


def test_recent_samples_weigh_more_after_a_half_life() -> None:
    h = DecayingHistogram(3600, first_bucket=0.01)
    for k in range(100):
        h.add(1.0, k)
    for k in range(100):
        h.add(10.0, 5 * 3600 + k)  # five half-lives later: 32 times the weight
    assert h.percentile(0.5) == pytest.approx(10, rel=0.06)


def test_target_is_p90_with_margin_and_hysteresis_holds_small_moves() -> None:
    h = _histogram([1.0] * 95 + [2.0] * 5)
    d = recommend_request(h, current=0.0, settings=S)
    assert d.reason == VerticalReason.TARGET
    assert d.request == pytest.approx(1.0 * 1.15, rel=0.06)
    held = recommend_request(h, current=d.request * 1.05, settings=S)
    assert (held.reason, held.resize) == (VerticalReason.WITHIN_HYSTERESIS, False)
    moved = recommend_request(h, current=d.request * 2, settings=S)
    assert moved.resize and moved.request == pytest.approx(d.request)


def test_oom_raises_memory_at_once() -> None:
    used = 500 * MIB
    assert oom_bump(used, S) == max(used + 100 * MIB, used * 1.2)
    h = _histogram([400.0 * MIB] * 50)
    d = recommend_request(h, current=float(used), settings=S, oom_used=float(used))
    assert d.reason == VerticalReason.OOM
    assert d.request == pytest.approx(600 * MIB)
    assert d.resize


def test_forecast_floors_the_request_and_bounds_cap_it() -> None:
    h = _histogram([1.0] * 100)
    d = recommend_request(h, current=1.0, settings=S, forecast=3.0)
    assert (d.request, d.reason) == (3.0, VerticalReason.FORECAST)
    capped = recommend_request(h, current=1.0, settings=S, forecast=3.0, max_allowed=2.0)
    assert (capped.request, capped.reason) == (2.0, VerticalReason.MAX_ALLOWED)
    limited = recommend_request(
        h, 0.0, VerticalSettings.model_validate({"limit_ratio": 2.0}), forecast=3.0
    )
    assert limited.limit == 6.0


def test_with_a_forecast_the_histogram_target_takes_the_smaller_margin() -> None:
    h = _histogram([1.0] * 100)
    d = recommend_request(h, current=0.0, settings=S, forecast=0.5)
    assert d.reason == VerticalReason.TARGET
    assert d.request == pytest.approx(1.0 * S.forecast_margin, rel=0.06)
    assert d.request < recommend_request(h, current=0.0, settings=S).request


def test_forecast_need_uses_only_the_window_up_to_now() -> None:
    times = np.arange(0.0, 10 * 86_400, 3600.0)
    usage = np.arange(len(times), dtype=np.float64)
    now = 5 * 86_400.0
    cpu = forecast_need(times, usage, now, "cpu", S)
    hours = usage[(times >= now - S.cpu_recent_hours * 3600) & (times <= now)]
    assert cpu == pytest.approx(float(np.quantile(hours, S.cpu_peak_percentile)))
    memory = forecast_need(times, usage, now, "memory", S)
    assert memory == pytest.approx(120 * S.memory_peak_margin)  # usage at now is 120
    assert forecast_need(times, usage, -1.0, "cpu", S) is None
