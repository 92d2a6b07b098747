"""Forecasters by name. A failed lookup lists the valid names.

:func:`model_names` is the one list of what a setting or a PredictiveAutoscaler may name:
every registered forecaster and ``auto`` (choose per workload by backtest, see
:mod:`autoscaler.forecast.selection`); the CRD's enum is generated from it.
"""

from __future__ import annotations

from collections.abc import Callable

from autoscaler.forecast.base import Forecaster, ForecastError, Horizon
from autoscaler.forecast.conformal import ConformalForecaster
from autoscaler.forecast.holt_winters import HoltWintersForecaster
from autoscaler.forecast.naive import NaiveForecaster
from autoscaler.forecast.quantile_gbm import LEARNED_EXTRA, QuantileGbmForecaster, available
from autoscaler.forecast.seasonal_naive import SeasonalNaiveForecaster
from autoscaler.forecast.settings import ForecastSettings

__all__ = [
    "AUTO",
    "Factory",
    "UnknownForecasterError",
    "check_model_name",
    "forecaster_names",
    "make_forecaster",
    "model_names",
    "register",
]

Factory = Callable[[Horizon, ForecastSettings], Forecaster]

# Not a registered forecaster: the per-workload choice among them.
AUTO = "auto"


class UnknownForecasterError(ForecastError, ValueError):
    """No forecaster has the requested name (a ValueError too: pydantic validators report
    it as the error of the field that named the model)."""


_REGISTRY: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    """Make ``factory`` available as ``name``; a name is registered once."""
    if name in _REGISTRY:
        raise ForecastError(f"forecaster {name!r} is already registered")
    _REGISTRY[name] = factory


def forecaster_names() -> list[str]:
    """Every registered name, sorted."""
    return sorted(_REGISTRY)


def model_names() -> list[str]:
    """Every name a model may be chosen by: the registered forecasters, then ``auto``."""
    return [*forecaster_names(), AUTO]


def check_model_name(name: str) -> str:
    """``name`` if :func:`model_names` has it, else :class:`UnknownForecasterError`."""
    if name not in model_names():
        raise UnknownForecasterError(
            f"unknown forecast model {name!r}; valid: {', '.join(model_names())}"
        )
    if name == "quantile_gbm" and not available():
        raise UnknownForecasterError(
            f"forecast model 'quantile_gbm' needs scikit-learn: {LEARNED_EXTRA}"
        )
    return name


def make_forecaster(name: str, horizon: Horizon, settings: ForecastSettings) -> Forecaster:
    """A new, unfitted forecaster called ``name``."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownForecasterError(
            f"unknown forecast model {name!r}; valid: {', '.join(forecaster_names())}"
        ) from None
    return factory(horizon, settings)


register("naive", lambda h, s: NaiveForecaster(h, s.quantile, s.quiet_offset))
register(
    "conformal",
    lambda h, s: ConformalForecaster(h, s.quantile, s.quiet_offset, s.history_days),
)
register("seasonal_naive", lambda h, s: SeasonalNaiveForecaster(h, s.quantile, s.quiet_offset))
register("holt_winters", lambda h, s: HoltWintersForecaster(h, s.quantile, s.quiet_offset))
register(
    "quantile_gbm",
    lambda h, s: QuantileGbmForecaster(h, s.quantile, s.quiet_offset, s.history_days),
)
