"""``conformal``: its features see no future, its two feature paths agree, it spends headroom
where the load jumps, a band's quantile rests on enough bursts, and it answers as ``naive``
where bands do not pay or the check cannot tell."""

from __future__ import annotations

import numpy as np
import pytest

from autoscaler.forecast.base import Horizon, Series
from autoscaler.forecast.conformal import (
    MIN_CHECK_EXCEEDANCES,
    ConformalForecaster,
    shrink_to_pooled,
)
from autoscaler.forecast.naive import NaiveForecaster
from autoscaler.forecast.ratio_features import RATIO_FEATURES, ratio_rows, ratio_table

STEP = 60.0
DAY_STEPS = round(86_400 / STEP)
HORIZON = Horizon(step_seconds=STEP, steps=3)
START = 1_600_000_000.0 - 1_600_000_000.0 % 86_400  # midnight, so hours of day are plain


def _bursty_mornings(days: int, seed: int = 3) -> Series:
    """Calm load all day, except two hours each morning with large short bursts."""
    rng = np.random.default_rng(seed)
    n = days * DAY_STEPS
    minute = np.arange(n) % DAY_STEPS
    values = 100 + rng.normal(0, 1.0, n)
    morning = (minute >= 8 * 60) & (minute < 10 * 60)
    bursts = morning & (rng.random(n) < 0.08)
    values[bursts] *= rng.uniform(1.3, 2.0, int(bursts.sum()))
    return Series(START, STEP, values)


def _coverage_and_cost(
    model: ConformalForecaster | NaiveForecaster, series: Series
) -> tuple[float, float]:
    fit_days = 8
    model.fit(Series(series.start_time, STEP, series.values[: fit_days * DAY_STEPS]))
    last = len(series.values) - 1 - HORIZON.steps
    origins = np.arange(fit_days * DAY_STEPS, last, dtype=np.int64)
    predicted = model.backtest(series, origins)
    windows = np.lib.stride_tricks.sliding_window_view(series.values[1:], HORIZON.steps)
    actual = windows.max(axis=1)[origins]
    return float(np.mean(actual <= predicted)), float(np.mean(predicted))


@pytest.mark.parametrize(("step", "steps"), [(60.0, 2), (60.0, 3), (15.0, 5), (15.0, 21)])
def test_rows_read_per_origin_equal_the_table(step: float, steps: int) -> None:
    rng = np.random.default_rng(int(step) + steps)
    n = 4 * round(86_400 / step) if step == 60.0 else 9 * round(86_400 / step)
    values = rng.gamma(2, 3, n) * (1 + np.sin(np.arange(n) / 500))
    values[rng.random(n) < 0.01] = np.nan
    table = ratio_table(values, START, step, steps, 0.7)
    assert table.features.shape == (n, len(RATIO_FEATURES))
    origins = np.unique(rng.integers(0, n, 200)).astype(np.int64)
    rows = ratio_rows(values, origins, START, step, steps, 0.7)
    np.testing.assert_allclose(rows, table.features[origins], atol=1e-9)


def test_features_use_nothing_after_their_origin() -> None:
    values = _bursty_mornings(9).values
    cut = 8 * DAY_STEPS + 500
    changed = values.copy()
    changed[cut + 1 :] = 1e6
    before = ratio_table(values, START, STEP, 3, 0.5).features[: cut + 1]
    after = ratio_table(changed, START, STEP, 3, 0.5).features[: cut + 1]
    np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("origins", [3, 400])  # per-origin rows, and the whole-window table
def test_banded_model_cannot_see_past_now(origins: int) -> None:
    series = _bursty_mornings(10)
    model = ConformalForecaster(HORIZON, 0.99, quiet_offset=0.5)
    model.fit(Series(START, STEP, series.values[: 9 * DAY_STEPS]))
    assert model.banded
    at = np.linspace(9 * DAY_STEPS, 10 * DAY_STEPS - 10, origins).astype(np.int64)
    before = model.backtest(series, at)
    changed = series.values.copy()
    changed[int(at[-1]) + 1 :] = 1e6
    after = model.backtest(Series(START, STEP, changed), at)
    np.testing.assert_allclose(before, after)
    prefix = Series(START, STEP, series.values[: at[0] + 1])
    assert model.predict(prefix) == pytest.approx(before[0])


def test_on_a_daily_pattern_it_covers_as_naive_does_for_less() -> None:
    series = _bursty_mornings(11)
    naive_cover, naive_cost = _coverage_and_cost(NaiveForecaster(HORIZON, 0.99, 0.5), series)
    model = ConformalForecaster(HORIZON, 0.99, quiet_offset=0.5)
    cover, cost = _coverage_and_cost(model, series)
    assert model.banded
    assert cover >= naive_cover - 0.005
    # Headroom goes to the mornings; the calm rest of the day runs close to its load.
    assert cost < 0.95 * naive_cost


def test_without_structure_it_answers_as_naive() -> None:
    rng = np.random.default_rng(5)
    n = 10 * DAY_STEPS
    series = Series(START, STEP, 100 + rng.gamma(2.0, 4.0, n))
    model = ConformalForecaster(HORIZON, 0.95, quiet_offset=0.5)
    naive = NaiveForecaster(HORIZON, 0.95, quiet_offset=0.5)
    history = Series(START, STEP, series.values[: 9 * DAY_STEPS])
    model.fit(history)
    naive.fit(history)
    assert not model.banded
    origins = np.arange(9 * DAY_STEPS, n - 5, 37, dtype=np.int64)
    np.testing.assert_allclose(
        model.backtest(series, origins), naive.backtest(series, origins), rtol=2e-3
    )


def test_a_band_with_few_bursts_leans_on_the_pooled_quantile() -> None:
    bands = np.array([0.1, 0.3, 2.0, -np.inf])
    pooled = 0.5
    # A week of 15 s origins per band at a 21-step horizon: about 4.8 bursts past 0.99 each.
    week = np.array([10_080, 10_080, 10_080, 0])
    thin = shrink_to_pooled(bands, week, pooled, horizon_steps=21, quantile=0.99)
    assert np.all((thin[:3] - bands[:3]) * (pooled - bands[:3]) > 0)  # toward the pooled one
    assert np.all(np.abs(thin[:3] - pooled) < np.abs(bands[:3] - pooled))
    assert thin[3] == -np.inf  # an empty band stays empty
    # The same bands seen through a hundred times more bursts keep nearly their own quantile.
    rich = shrink_to_pooled(bands, week * 100, pooled, horizon_steps=21, quantile=0.99)
    np.testing.assert_allclose(rich[:3], bands[:3], atol=0.02)
    # At a higher quantile the same week holds fewer bursts past it: more shrinkage.
    rarer = shrink_to_pooled(bands, week, pooled, horizon_steps=21, quantile=0.997)
    assert np.all(np.abs(rarer[:3] - pooled) < np.abs(thin[:3] - pooled))


@pytest.mark.parametrize(("quantile", "banded"), [(0.998, True), (0.999, False)])
def test_bands_need_a_check_day_that_can_show_their_misses(quantile: float, banded: bool) -> None:
    # The mornings' bursts make the bands pay at both quantiles; at 0.999 a day of 1,440
    # origins with a three-step horizon is expected to hold 0.48 independent exceedances,
    # too few to tell a calm band's miss from its saving, so the model answers as naive does.
    expected = DAY_STEPS / HORIZON.steps * (1 - quantile)
    assert (expected >= MIN_CHECK_EXCEEDANCES) == banded
    series = _bursty_mornings(10)
    history = Series(START, STEP, series.values[: 9 * DAY_STEPS])
    model = ConformalForecaster(HORIZON, quantile, quiet_offset=0.5)
    model.fit(history)
    assert model.banded == banded
    # Unbanded: one multiplier of the level at every origin, as naive's answer.
    origins = np.arange(9 * DAY_STEPS, 10 * DAY_STEPS - 5, 37, dtype=np.int64)
    level = series.values[origins] + model.offset
    ratio = (model.backtest(series, origins) + model.offset) / level
    assert (np.ptp(ratio) < 1e-9 * ratio.max()) != banded
