"""``ehpa@T``: Crane's Effective HPA, its DSP prediction feeding an HPA at target T.

Sources read (gocrane/crane): ``pkg/controller/ehpa/hpa.go`` (the HPA the EHPA creates: the
user's utilisation metric plus an ``External`` prediction metric whose ``AverageValue`` is the
pod request × the target utilisation), ``pkg/controller/ehpa/predict.go`` (the
TimeSeriesPrediction with the EHPA's window), the metric adapter's external metric (the
*largest* predicted value in [now, now + ``predictionWindowSeconds``]),
``docs/tutorials/using-effective-hpa-to-scaling-with-effectiveness.md`` (the documented
settings used here: ``predictionWindowSeconds: 3600``, ``sampleInterval: 60s``,
``historyLength: 3d``; the HPA takes the largest proposal over its metrics), and the DSP
predictor's sources listed in :mod:`autoscaler.backtest.crane_dsp` (refreshed every 12 h).

In the backtest world:

- the predictor sees the demand history sampled every 60 s (the value at each minute, as a
  range query returns it), in units of the capacity per replica: Crane's amplitude threshold
  of 1.0 is in CPU cores, and one replica here is the load one pod serves, about a core;
- when the series is not periodic (or has fewer than two days), Crane serves no prediction
  metric and the EHPA is the plain HPA on utilisation;
- the HPA part is :class:`HpaPolicy`: the utilisation proposal and the prediction metric's
  proposal, the larger of the two, then the HPA's limits and stabilisation.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from autoscaler.backtest.crane_dsp import predict_next_cycle
from autoscaler.backtest.observation import DemandHistory, Observation, WorkloadInfo
from autoscaler.backtest.reference import HpaPolicy

__all__ = ["EhpaPolicy"]

SAMPLE_INTERVAL_SECONDS = 60.0
HISTORY_SECONDS = 3 * 86_400.0
PREDICTION_WINDOW_SECONDS = 3600.0
REFRESH_SECONDS = 12 * 3600.0  # prediction.go: queryInterval


class EhpaPolicy:
    """Crane's EHPA at target utilisation ``target``."""

    def __init__(
        self,
        info: WorkloadInfo,
        target: float,
        history_seconds: float = HISTORY_SECONDS,
        window_seconds: float = PREDICTION_WINDOW_SECONDS,
    ) -> None:
        self.hpa = HpaPolicy(info, target)
        self.info = info
        self.history_seconds = history_seconds
        self.window_seconds = window_seconds
        self._refreshed_at: float | None = None
        self._predicted: NDArray[np.float64] | None = None
        self._first_time = 0.0  # time of the first predicted sample
        self.predictions: list[float] = []  # the prediction metric at each decision (NaN: none)

    def initial(self, history: DemandHistory) -> int:
        return self.hpa.initial(history)

    def _refresh(self, history: DemandHistory) -> None:
        now = history.now
        if self._refreshed_at is not None and now - self._refreshed_at < REFRESH_SECONDS:
            return
        self._refreshed_at = now
        step = history.step_seconds
        stride = max(1, round(SAMPLE_INTERVAL_SECONDS / step))
        values = history.values
        # The last step at or before the latest whole minute, then every minute back.
        end_time = math.floor(now / SAMPLE_INTERVAL_SECONDS) * SAMPLE_INTERVAL_SECONDS
        end = len(values) - 1 - max(0, math.ceil((now - end_time) / step - 1e-9))
        if end < 0:
            self._predicted = None
            return
        # historyLength plus the hour the query adds; whole days are kept by the predictor.
        count = int((self.history_seconds + 3600.0) // SAMPLE_INTERVAL_SECONDS) + 1
        start = max(end % stride, end - (count - 1) * stride)
        samples = values[start : end + 1 : stride] / self.info.capacity_per_replica
        self._predicted = predict_next_cycle(np.asarray(samples), SAMPLE_INTERVAL_SECONDS)
        last_time = history.start_time + end * step
        self._first_time = last_time + SAMPLE_INTERVAL_SECONDS

    def prediction(self, now: float) -> float | None:
        """The prediction metric at ``now`` (total load), or None when Crane serves none."""
        predicted = self._predicted
        if predicted is None:
            return None
        lo = math.ceil((now - self._first_time) / SAMPLE_INTERVAL_SECONDS - 1e-9)
        hi = math.floor((now + self.window_seconds - self._first_time) / SAMPLE_INTERVAL_SECONDS)
        lo, hi = max(lo, 0), min(hi, len(predicted) - 1)
        if hi < lo:
            return None  # the prediction is outdated: the adapter answers an error
        return float(predicted[lo : hi + 1].max()) * self.info.capacity_per_replica

    def decide(self, obs: Observation) -> int:
        self._refresh(obs.history)
        desired = self.hpa.proposal(obs)
        value = self.prediction(obs.now)
        self.predictions.append(math.nan if value is None else value)
        if value is not None:
            desired = max(desired, self.hpa.value_proposal(value, obs))
        return self.hpa.settle(desired, obs)
