"""``phpa-hw@T`` and ``phpa-lin@T``: the Predictive Horizontal Pod Autoscaler (PHPA) with
Holt-Winters or linear regression, written from its published algorithm and documented
settings.

Sources read (jthomperoo/predictive-horizontal-pod-autoscaler):
``internal/controllers/predictivehorizontalpodautoscaler_controller.go`` (each sync: the HPA
calculation, every model fed and asked, the decision, downscale stabilisation),
``internal/scalebehavior/scalebehavior.go`` (decision type ``maximum`` by default),
``internal/prediction/holtwinters/holtwinters.go`` and ``internal/prediction/linear/linear.go``
(what each model is given and how its history is pruned),
``algorithms/holt_winters/holt_winters.py`` and
``algorithms/linear_regression/linear_regression.py`` (the models), and
``docs/user-guide/models.md`` (the documented settings used here, as the models have no
defaults: Holt-Winters alpha = beta = gamma = 0.9, season of 6 syncs, 4 stored seasons,
additive; linear lookAhead 10 s, 6 stored values).

What the PHPA does every sync (15 s, the world's step):

1. the HPA's calculation on the utilisation metric (ratio to the target, tolerance 0.1) gives
   the *calculated* replicas; this is :meth:`HpaPolicy.proposal`;
2. each model appends the calculated replicas to its history, predicts from the history, then
   prunes it: a model predicts *replica counts* from past calculated replica counts, not load;
3. the decision is the maximum of the calculated replicas and the predictions;
4. the HPA's scale-up limit and 300 s downscale stabilisation (:meth:`HpaPolicy.settle`).
   The PHPA's own default scale-up limit is max(2 × current, 4) where the HPA's is
   max(2 × current, current + 4); the HPA's is used so that the two share one algorithm.

Holt-Winters is fitted like ``statsmodels.ExponentialSmoothing.fit`` with fixed smoothing
values and ``initialization_method="estimated"``: the additive recursions over the stored
series, from the initial state with the least squared one-step errors (found by one linear
solve, as the errors are affine in the initial state, rather than by statsmodels' optimiser).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from autoscaler.backtest.observation import DemandHistory, Observation, WorkloadInfo
from autoscaler.backtest.reference import HpaPolicy

__all__ = ["HoltWintersModel", "LinearModel", "PhpaPolicy", "ReplicaModel"]

# Integral replica predictions are rounded up; a float a hair above an integer is that integer.
_CEIL_SLACK = 1e-9


def _ceil(x: float) -> int:
    return math.ceil(x - _CEIL_SLACK)


class ReplicaModel(Protocol):
    """A PHPA model: fed one calculated replica count per sync, asked for a prediction."""

    def observe_and_predict(self, now: float, replicas: int) -> int | None:
        """Store ``replicas`` (calculated at ``now``), predict, prune; None: no prediction."""
        ...


@dataclass(frozen=True)
class HoltWintersSettings:
    """The documented Holt-Winters example settings (``docs/user-guide/models.md``)."""

    alpha: float = 0.9
    beta: float = 0.9
    gamma: float = 0.9
    seasonal_periods: int = 6
    stored_seasons: int = 4


def _recursions(
    series: Sequence[float], s: HoltWintersSettings, state: Sequence[float]
) -> tuple[list[float], float]:
    """One-step errors over ``series`` and the next forecast, from the initial ``state``
    (level, trend, then the m seasonal values before the first observation), with
    statsmodels' additive recursions."""
    m = s.seasonal_periods
    level, trend = state[0], state[1]
    season = list(state[2:])
    errors = []
    for t, y in enumerate(series):
        old_level, old_trend, old_season = level, trend, season[t % m]
        errors.append(y - (old_level + old_trend + old_season))
        level = s.alpha * (y - old_season) + (1 - s.alpha) * (old_level + old_trend)
        trend = s.beta * (level - old_level) + (1 - s.beta) * old_trend
        season[t % m] = s.gamma * (y - old_level - old_trend) + (1 - s.gamma) * old_season
    return errors, level + trend + season[len(series) % m]


@lru_cache(maxsize=256)
def _correction(n: int, s: HoltWintersSettings) -> NDArray[np.float64]:
    """Weights w with forecast = f0 - w · e0, where e0 and f0 come from a zero initial state:
    the recursions are affine in the initial state, so the least-squares initial state is
    one linear solve, the same for every series of length ``n``."""
    k = 2 + s.seasonal_periods
    zeros = [0.0] * n
    columns, gains = [], []
    for i in range(k):
        unit = [0.0] * k
        unit[i] = 1.0
        errors, forecast = _recursions(zeros, s, unit)
        columns.append(errors)
        gains.append(forecast)
    jacobian = np.asarray(columns, dtype=np.float64).T  # n x k
    # Minimum-norm least squares: the level/season shift the data cannot tell apart moves
    # neither the errors nor the forecast.
    w: NDArray[np.float64] = np.asarray(gains) @ np.linalg.pinv(jacobian)
    return w


def holt_winters_forecast(series: Sequence[float], s: HoltWintersSettings) -> float:
    """One-step-ahead additive Holt-Winters forecast with fixed smoothing values and the
    initial state that minimises the squared one-step errors, as
    ``statsmodels.ExponentialSmoothing(..., initialization_method="estimated").fit(...)``
    does with the smoothing values given."""
    errors, forecast = _recursions(series, s, [0.0] * (2 + s.seasonal_periods))
    w = _correction(len(series), s)
    return forecast - float(w @ np.asarray(errors))


class HoltWintersModel:
    """PHPA's Holt-Winters model on the calculated replica counts."""

    def __init__(self, settings: HoltWintersSettings | None = None) -> None:
        self.settings = settings or HoltWintersSettings()
        self._series: list[float] = []

    @property
    def minimum(self) -> int:
        """Observations statsmodels needs before it predicts (fewer: the PHPA answers 0)."""
        return 10 + 2 * (self.settings.seasonal_periods // 2)

    def observe_and_predict(self, now: float, replicas: int) -> int | None:
        self._series.append(float(replicas))
        prediction = (
            _ceil(holt_winters_forecast(self._series, self.settings))
            if len(self._series) >= self.minimum
            else 0  # what holtwinters.go returns below the minimum; the maximum ignores it
        )
        # Prune whole seasons, oldest first, beyond the stored seasons.
        m = self.settings.seasonal_periods
        excess = len(self._series) // m - self.settings.stored_seasons
        if excess > 0:
            del self._series[: excess * m]
        return prediction


@dataclass(frozen=True)
class LinearSettings:
    """The documented linear regression example settings (``docs/user-guide/models.md``)."""

    look_ahead_seconds: float = 10.0
    history_size: int = 6


class LinearModel:
    """PHPA's linear regression: ordinary least squares of replicas on time over the stored
    evaluations and the new one, read at now + lookAhead, rounded up."""

    def __init__(self, settings: LinearSettings | None = None) -> None:
        self.settings = settings or LinearSettings()
        self._history: deque[tuple[float, int]] = deque()

    def observe_and_predict(self, now: float, replicas: int) -> int | None:
        self._history.append((now, replicas))
        prediction = self._predict(now)
        while len(self._history) > self.settings.history_size:
            self._history.popleft()
        return prediction

    def _predict(self, now: float) -> int:
        points = self._history
        if len(points) == 1:
            return points[0][1]  # linear.go: one evaluation is returned as it is
        search = now + self.settings.look_ahead_seconds
        # Regress on (search time - evaluation time), as the PHPA does: the answer is the
        # intercept.
        xs = [search - t for t, _ in points]
        ys = [float(r) for _, r in points]
        n = len(xs)
        mx, my = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx == 0:
            return _ceil(my)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
        return _ceil(my - slope * mx)


class PhpaPolicy:
    """The PHPA at target utilisation ``target`` with one model."""

    def __init__(self, info: WorkloadInfo, target: float, model: ReplicaModel) -> None:
        self.hpa = HpaPolicy(info, target)
        self.model = model

    def initial(self, history: DemandHistory) -> int:
        return self.hpa.initial(history)

    def decide(self, obs: Observation) -> int:
        calculated = self.hpa.proposal(obs)
        predicted = self.model.observe_and_predict(obs.now, calculated)
        desired = calculated if predicted is None else max(calculated, predicted)
        return self.hpa.settle(desired, obs)
