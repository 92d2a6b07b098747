"""Crane's DSP predictor, written from its published algorithm and defaults.

Sources read (gocrane/crane): ``pkg/prediction/dsp/config.go`` (default estimators and
history), ``pkg/prediction/dsp/estimators.go`` (the FFT estimator and its defaults),
``pkg/prediction/dsp/frequency_spectrum.go`` (``IsPeriodic``), ``pkg/prediction/dsp/signal.go``
(``Truncate``), ``pkg/prediction/dsp/prediction.go`` (the 12 h refresh, choosing the estimator
on the last cycle) and ``pkg/prediction/accuracy/accuracy.go`` (the error that chooses it).

The predictor, as Crane runs it:

1. the series at its sample interval, cut to a whole number of days ending now;
2. periodic with a day (or else a week) when, walking the spectrum (without the zero
   frequency) from the largest amplitude down, a component within 0.1 % of the cycle comes
   before any component with a longer period; not periodic: no prediction;
3. at least two cycles; each candidate estimator predicts the last cycle from the cycles
   before it, and the one with the least error (an asymmetric MAPE that amplifies
   under-prediction; MAE when a value is near 0) is chosen;
4. the chosen estimator's prediction of the next cycle: the FFT of the whole history with the
   components that are both above ``highFrequencyThreshold`` and below the amplitude floor
   zeroed, back-transformed; the last cycle of that, values <= 0 replaced by 0.01, times
   (1 + ``marginFraction``).

The amplitude floor of an estimator: the ``maxNumOfSpectrumItems``-th largest amplitude (or
the smallest), raised to ``lowAmplitudeThreshold``, but never above the
``minNumOfSpectrumItems``-th largest amplitude, so at least that many components survive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DAY_SECONDS",
    "DEFAULT_ESTIMATORS",
    "FftEstimator",
    "best_estimator",
    "is_periodic",
    "predict_next_cycle",
    "prediction_error",
]

FloatArray = NDArray[np.float64]

DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS
# estimators.go defaults (a zero field in a configured estimator takes these).
DEFAULT_HIGH_FREQUENCY_THRESHOLD = 1.0 / 3600.0  # Hz: components slower than 1/h always stay
DEFAULT_MAX_SPECTRUM_ITEMS = 100
FFT_MIN_VALUE = 0.01
PERIOD_EPSILON = 1e-3
MAPE_EPSILON = 1e-3


@dataclass(frozen=True)
class FftEstimator:
    """One of Crane's FFT estimators (``fftEstimator``)."""

    min_spectrum_items: int
    low_amplitude_threshold: float
    margin_fraction: float
    max_spectrum_items: int = DEFAULT_MAX_SPECTRUM_ITEMS
    high_frequency_threshold: float = DEFAULT_HIGH_FREQUENCY_THRESHOLD

    def estimate(self, samples: FloatArray, interval: float, cycle: float) -> FloatArray:
        """The next cycle after ``samples`` (a whole number of cycles at ``interval`` s)."""
        n = len(samples)
        spectrum = np.fft.fft(samples)
        amplitude = np.abs(spectrum) / n
        frequency = np.arange(n) / (n * interval)
        ranked = np.sort(amplitude[1 : n // 2])[::-1]
        if len(ranked) == 0:
            floor = self.low_amplitude_threshold
        else:
            floor = float(ranked[min(self.max_spectrum_items, len(ranked)) - 1])
            floor = max(floor, self.low_amplitude_threshold)
            if len(ranked) >= self.min_spectrum_items:
                floor = min(floor, float(ranked[self.min_spectrum_items - 1]))
        # As Crane computes it, bin k's frequency is k/n for every k, so the conjugate half
        # (k > n/2) always counts as "high": a weak slow component keeps its positive half
        # only, and the real part of the inverse transform carries half of it.
        spectrum[(amplitude < floor) & (frequency > self.high_frequency_threshold)] = 0
        filtered = np.fft.ifft(spectrum).real
        per_cycle = round(cycle / interval)
        tail = filtered[n - per_cycle :]
        tail = np.where(tail <= 0.0, FFT_MIN_VALUE, tail)
        out: FloatArray = tail * (1.0 + self.margin_fraction)
        return out


# config.go: the estimators a TimeSeriesPrediction gets when its DSP config names none.
DEFAULT_ESTIMATORS: tuple[FftEstimator, ...] = tuple(
    FftEstimator(items, threshold, margin)
    for items, threshold in ((3, 1.0), (50, 0.05))
    for margin in (0.01, 0.10, 0.15, 0.20)
)


def is_periodic(samples: FloatArray, interval: float, cycle: float) -> bool:
    """Crane's ``IsPeriodic``: at least two cycles, and the strongest component with a period
    of at least ``cycle`` is the cycle itself."""
    per_cycle = round(cycle / interval)
    cycles = len(samples) // per_cycle
    if cycles < 2:
        return False
    x = samples[len(samples) - cycles * per_cycle :]
    n = len(x)
    amplitude = (np.abs(np.fft.fft(x)) / n)[1 : n // 2]
    frequency = (np.arange(n) / (n * interval))[1 : n // 2]
    # Descending amplitude; a stable sort keeps ties in frequency order.
    for k in np.argsort(-amplitude, kind="stable"):
        period = 1.0 / float(frequency[k])
        if period > cycle:
            return False
        if abs(period - cycle) / period < PERIOD_EPSILON:
            return True
    return False


def _amplify(x: float) -> float:
    return -math.log(1.0 - x) / math.log(1.25) if x < 1.0 else math.inf


def prediction_error(actual: FloatArray, predicted: FloatArray) -> float:
    """Crane's ``PredictionError``: MAPE with under-prediction amplified, or MAE when an
    actual value is within 1e-3 of zero."""
    if bool(np.any(actual < MAPE_EPSILON)):
        return float(np.mean(np.abs(actual - predicted)))
    total = 0.0
    for a, p in zip(actual.tolist(), predicted.tolist(), strict=True):
        total += _amplify((a - p) / a) if p < a else (p - a) / a
    return total / len(actual)


def best_estimator(
    samples: FloatArray,
    interval: float,
    cycle: float,
    estimators: Sequence[FftEstimator] = DEFAULT_ESTIMATORS,
) -> FftEstimator:
    """The estimator that best predicts the last cycle of ``samples`` from the ones before."""
    per_cycle = round(cycle / interval)
    history, actual = samples[:-per_cycle], samples[-per_cycle:]
    best, best_error = estimators[0], math.inf
    for estimator in estimators:
        error = prediction_error(actual, estimator.estimate(history, interval, cycle))
        if error < best_error:
            best, best_error = estimator, error
    return best


def predict_next_cycle(
    samples: FloatArray,
    interval: float,
    estimators: Sequence[FftEstimator] = DEFAULT_ESTIMATORS,
) -> FloatArray | None:
    """The values of the cycle that follows ``samples`` (oldest first, the last one now), one
    per ``interval``; None when the series is not daily or weekly periodic."""
    per_day = round(DAY_SECONDS / interval)
    # preProcessTimeSeries: keep a whole number of days, ending now.
    whole = (len(samples) // per_day) * per_day
    if whole == 0:
        return None
    x = np.asarray(samples[len(samples) - whole :], dtype=np.float64)
    for cycle in (DAY_SECONDS, WEEK_SECONDS):
        if is_periodic(x, interval, cycle):
            per_cycle = round(cycle / interval)
            cut = x[len(x) - (len(x) // per_cycle) * per_cycle :]
            chosen = best_estimator(cut, interval, cycle, estimators)
            return chosen.estimate(cut, interval, cycle)
    return None
