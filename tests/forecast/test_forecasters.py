"""Forecasters: registry, honesty (no value past now is used), calibration, fallback rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.forecast.base import Horizon, Series
from autoscaler.forecast.live import LiveForecast
from autoscaler.forecast.registry import (
    UnknownForecasterError,
    forecaster_names,
    make_forecaster,
)
from autoscaler.forecast.selection import CANDIDATES, AutoForecaster, ChoiceReason
from autoscaler.forecast.settings import ForecastSettings

STEP = 60.0  # coarse steps keep fitting fast
DAY_STEPS = round(86_400 / STEP)
HORIZON = Horizon(step_seconds=STEP, steps=2)


def _daily_load(days: float, seed: int = 1) -> Series:
    n = round(days * DAY_STEPS)
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    values = 100 + 50 * np.sin(2 * np.pi * t / DAY_STEPS) + rng.gamma(2.0, 4.0, n)
    return Series(1_600_000_000.0, STEP, values)


def _settings(**kw: object) -> ForecastSettings:
    return ForecastSettings.model_validate({"quantile": 0.95, **kw})


def test_lookup_error_lists_valid_names() -> None:
    with pytest.raises(UnknownForecasterError) as e:
        make_forecaster("prophet", HORIZON, _settings())
    for name in ("naive", "conformal", "seasonal_naive", "holt_winters", "quantile_gbm"):
        assert name in str(e.value)
    assert set(forecaster_names()) >= {
        "naive",
        "conformal",
        "seasonal_naive",
        "holt_winters",
        "quantile_gbm",
    }


@pytest.mark.parametrize(
    "name", ["naive", "conformal", "seasonal_naive", "holt_winters", "quantile_gbm"]
)
def test_a_forecaster_cannot_see_past_now(name: str) -> None:
    series = _daily_load(4)
    fit_on = Series(series.start_time, STEP, series.values[: 3 * DAY_STEPS])
    model = make_forecaster(name, HORIZON, _settings())
    model.fit(fit_on)
    origins = np.arange(3 * DAY_STEPS, 3 * DAY_STEPS + 300, 7, dtype=np.int64)
    before = model.backtest(series, origins)
    cut = int(origins[-1])
    changed = series.values.copy()
    changed[cut + 1 :] = 1e6  # a future nobody could know
    after = model.backtest(Series(series.start_time, STEP, changed), origins)
    np.testing.assert_allclose(before, after)
    # predict() is backtest() at the last value: a history ending at an origin gives the same.
    prefix = Series(series.start_time, STEP, series.values[: origins[3] + 1])
    assert model.predict(prefix) == pytest.approx(before[3])


def test_naive_covers_its_quantile_on_held_out_data() -> None:
    series = _daily_load(6)
    model = make_forecaster("naive", HORIZON, _settings(quantile=0.9))
    model.fit(Series(series.start_time, STEP, series.values[: 4 * DAY_STEPS]))
    origins = np.arange(4 * DAY_STEPS, 6 * DAY_STEPS - 3, dtype=np.int64)
    predicted = model.backtest(series, origins)
    actual = np.array([series.values[o + 1 : o + 3].max() for o in origins])
    coverage = float(np.mean(actual <= predicted))
    assert 0.85 <= coverage <= 0.97


def test_auto_falls_back_to_reactive_on_short_history_and_gaps() -> None:
    auto = AutoForecaster(HORIZON, _settings(model="auto"))
    auto.fit(_daily_load(0.5))
    assert (auto.choice.name, auto.choice.reason) == ("naive", ChoiceReason.SHORT_HISTORY)
    gappy = _daily_load(3)
    values = gappy.values.copy()
    values[::5] = np.nan
    auto.fit(Series(gappy.start_time, STEP, values))
    assert (auto.choice.name, auto.choice.reason) == ("naive", ChoiceReason.GAPS)


def test_auto_chooses_by_held_out_loss() -> None:
    auto = AutoForecaster(HORIZON, _settings(model="auto"))
    auto.fit(_daily_load(3))
    losses = auto.choice.losses
    assert set(losses) >= {"naive", "conformal", "holt_winters", "quantile_gbm", "seasonal_naive"}
    if auto.choice.reason == ChoiceReason.BEST_BACKTEST:
        assert losses[auto.choice.name] == min(losses[n] for n in CANDIDATES)
    else:
        assert auto.choice.reason == ChoiceReason.WORSE_THAN_SEASONAL
    assert auto.predict(_daily_load(3)) > 0


def test_live_forecast_follows_load_between_evaluations() -> None:
    series = _daily_load(2)
    model = make_forecaster("naive", HORIZON, _settings())
    model.fit(series)
    live = LiveForecast(model, every_seconds=300)
    first = live.peak(series, float(series.values[-1]))
    assert first == pytest.approx(model.predict(series))
    longer = Series(series.start_time, STEP, np.append(series.values, series.values[-1] * 2))
    scaled = live.peak(longer, float(longer.values[-1]))
    assert scaled > first  # load doubled: the kept headroom applies to the new load


def test_live_forecast_never_asks_for_more_than_the_recent_peak() -> None:
    series = _daily_load(2)
    model = make_forecaster("naive", HORIZON, _settings())
    model.fit(series)
    recent_max = float(series.values[-DAY_STEPS:].max())
    live = LiveForecast(model, every_seconds=300, cap_seconds=86_400)
    uncapped = LiveForecast(model, every_seconds=300)
    level = float(series.values[-1])
    assert live.peak(series, level) <= max(recent_max, level)
    # Load far above any recent peak: the cap gives way to the load itself.
    assert live.peak(series, 10 * recent_max) == pytest.approx(10 * recent_max)
    assert uncapped.peak(series, level) >= live.peak(series, level)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(0, 1e6), min_size=30, max_size=200),
    level=st.floats(0, 1e6),
    cap_steps=st.integers(1, 50),
)
def test_capped_forecast_is_below_the_recent_peak_and_the_uncapped(
    values: list[float], level: float, cap_steps: int
) -> None:
    series = Series(0.0, STEP, np.asarray(values))
    model = make_forecaster("naive", HORIZON, _settings())
    model.fit(series)
    capped = LiveForecast(model, 300, cap_seconds=cap_steps * STEP).peak(series, level)
    free = LiveForecast(model, 300).peak(series, level)
    assert capped <= max(*values[-cap_steps:], level) + 1e-6
    assert capped <= free + 1e-6
