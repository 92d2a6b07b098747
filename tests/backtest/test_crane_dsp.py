"""Crane's DSP predictor (autoscaler/backtest/crane_dsp.py) on series with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from autoscaler.backtest.crane_dsp import (
    DAY_SECONDS,
    DEFAULT_ESTIMATORS,
    FftEstimator,
    best_estimator,
    is_periodic,
    predict_next_cycle,
    prediction_error,
)

MINUTE = 60.0
PER_DAY = DAY_SECONDS // 60


def _daily(days: float, phase_minutes: int = 0) -> NDArray[np.float64]:
    t = np.arange(int(days * PER_DAY)) + phase_minutes
    out: NDArray[np.float64] = (
        10 + 6 * np.sin(2 * np.pi * t / PER_DAY) + 2 * np.sin(2 * np.pi * 3 * t / PER_DAY)
    )
    return out


def test_a_daily_sine_is_periodic_and_noise_or_a_ramp_is_not() -> None:
    assert is_periodic(_daily(3), MINUTE, DAY_SECONDS)
    assert not is_periodic(_daily(1.9), MINUTE, DAY_SECONDS)  # fewer than two cycles
    ramp = np.linspace(1, 50, 3 * PER_DAY)
    assert not is_periodic(ramp, MINUTE, DAY_SECONDS)
    # A two-day cycle dominates a weak daily one: the slower component comes first.
    t = np.arange(4 * PER_DAY)
    slow = 10 + 5 * np.sin(np.pi * t / PER_DAY) + 0.5 * np.sin(2 * np.pi * t / PER_DAY)
    assert not is_periodic(slow, MINUTE, DAY_SECONDS)


def test_the_next_day_of_a_sine_is_predicted_with_the_margin() -> None:
    history = _daily(3)
    truth = _daily(1, phase_minutes=3 * PER_DAY)
    predicted = predict_next_cycle(history, MINUTE)
    assert predicted is not None and len(predicted) == PER_DAY
    # The best estimator on an exact cycle is the one with the least margin (1 %).
    assert best_estimator(history, MINUTE, DAY_SECONDS).margin_fraction == 0.01
    np.testing.assert_allclose(predicted, truth * 1.01, rtol=1e-6)


def test_a_partial_day_is_dropped_from_the_oldest_end() -> None:
    # 3.5 days: the predictor keeps the last 3 whole days, so the answer is the same.
    full = _daily(3.5)
    a = predict_next_cycle(full, MINUTE)
    b = predict_next_cycle(full[PER_DAY // 2 :], MINUTE)
    assert a is not None and b is not None
    np.testing.assert_allclose(a, b)


def test_no_prediction_for_a_series_that_is_not_periodic() -> None:
    rng = np.random.default_rng(3)
    assert predict_next_cycle(rng.gamma(2.0, 2.0, 3 * PER_DAY), MINUTE) is None
    assert predict_next_cycle(_daily(1.5), MINUTE) is None


def test_the_estimator_keeps_strong_components_and_floors_at_a_hundredth() -> None:
    # A sine of amplitude A shows A/2 in each half of the spectrum. The floor of 1.0 drops
    # the 30-per-day component (0.5; faster than the hourly threshold) but keeps the daily
    # one (3); values <= 0 become 0.01.
    t = np.arange(3 * PER_DAY)
    x = 6 * np.sin(2 * np.pi * t / PER_DAY) + 1.0 * np.sin(2 * np.pi * 30 * t / PER_DAY)
    estimator = FftEstimator(1, 1.0, 0.0)
    out = estimator.estimate(x, MINUTE, DAY_SECONDS)
    expected = 6 * np.sin(2 * np.pi * np.arange(PER_DAY) / PER_DAY)
    np.testing.assert_allclose(out, np.where(expected <= 0, 0.01, expected), atol=1e-6)
    # Below the hourly threshold a weak component is kept whatever its amplitude, but only
    # its positive-frequency half: Crane counts the conjugate bins as high frequencies, so
    # half of the component survives the inverse transform.
    slow = x + 1.0 * np.sin(2 * np.pi * 12 * t / PER_DAY)
    out = estimator.estimate(slow, MINUTE, DAY_SECONDS)
    expected = expected + 0.5 * np.sin(2 * np.pi * 12 * np.arange(PER_DAY) / PER_DAY)
    np.testing.assert_allclose(out, np.where(expected <= 0, 0.01, expected), atol=1e-6)


def test_under_prediction_costs_more_than_over_prediction() -> None:
    actual = np.array([10.0, 10.0])
    over = prediction_error(actual, np.array([12.0, 12.0]))
    under = prediction_error(actual, np.array([8.0, 8.0]))
    assert over == pytest.approx(0.2)
    assert under == pytest.approx(-np.log(0.8) / np.log(1.25))  # amplify(0.2) = 1.0
    assert under > over
    # An actual value near zero: mean absolute error instead.
    assert prediction_error(np.array([0.0, 2.0]), np.array([1.0, 1.0])) == 1.0


def test_default_estimators_are_cranes_eight() -> None:
    assert len(DEFAULT_ESTIMATORS) == 8
    assert {e.margin_fraction for e in DEFAULT_ESTIMATORS} == {0.01, 0.10, 0.15, 0.20}
    assert {(e.min_spectrum_items, e.low_amplitude_threshold) for e in DEFAULT_ESTIMATORS} == {
        (3, 1.0),
        (50, 0.05),
    }
    assert all(e.max_spectrum_items == 100 for e in DEFAULT_ESTIMATORS)
    assert all(e.high_frequency_threshold == 1 / 3600 for e in DEFAULT_ESTIMATORS)
