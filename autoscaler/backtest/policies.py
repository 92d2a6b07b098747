"""Replica policies by name: ``foresight`` (or ``foresight:MODEL``), ``hpa@T``, the predictive
peers ``ehpa@T``, ``phpa-hw@T``, ``phpa-lin@T``, ``hpa-on-forecast@T``, and the yardsticks
``oracle`` and ``static``.

A factory for a policy that may not see the future receives only :class:`WorkloadInfo`; only
the clairvoyant yardsticks receive the world.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autoscaler.backtest.observation import ReplicaPolicy, WorkloadInfo
from autoscaler.backtest.reference import HpaPolicy, OraclePolicy, StaticPolicy
from autoscaler.backtest.world import World
from autoscaler.forecast.settings import ForecastSettings

__all__ = [
    "DEFAULT_POLICIES",
    "TARGETED",
    "PolicyError",
    "PolicySpec",
    "is_foresight",
    "make_policy",
    "policy_names",
    "split_target",
]

# Each competitor at the targets bench.scaling compares, so that the default comparison shows
# each one's best setting (see autoscaler.backtest.verdict).
DEFAULT_POLICIES = (
    "foresight",
    "hpa@0.5",
    "hpa@0.7",
    "hpa@0.9",
    "ehpa@0.5",
    "ehpa@0.7",
    "ehpa@0.9",
    "phpa-hw@0.5",
    "phpa-hw@0.7",
    "phpa-hw@0.9",
    "phpa-lin@0.5",
    "phpa-lin@0.7",
    "phpa-lin@0.9",
    "hpa-on-forecast@0.7",
    "oracle",
    "static",
)


class PolicyError(Exception):
    """An unknown policy name; the message lists the valid ones."""


@dataclass(frozen=True)
class PolicySpec:
    """How to build one named policy."""

    name: str
    clairvoyant: bool
    honest: Callable[[WorkloadInfo], ReplicaPolicy] | None = None
    seer: Callable[[World], ReplicaPolicy] | None = None

    def build(self, world: World) -> ReplicaPolicy:
        """A fresh policy for one replay of ``world``."""
        if self.seer is not None:
            return self.seer(world)
        assert self.honest is not None
        return self.honest(world.info)


def _hpa(info: WorkloadInfo, target: float, forecast: ForecastSettings | None) -> ReplicaPolicy:
    return HpaPolicy(info, target)


def _ehpa(info: WorkloadInfo, target: float, forecast: ForecastSettings | None) -> ReplicaPolicy:
    from autoscaler.backtest.ehpa import EhpaPolicy  # noqa: PLC0415

    return EhpaPolicy(info, target)


def _phpa_hw(info: WorkloadInfo, target: float, forecast: ForecastSettings | None) -> ReplicaPolicy:
    from autoscaler.backtest.phpa import HoltWintersModel, PhpaPolicy  # noqa: PLC0415

    return PhpaPolicy(info, target, HoltWintersModel())


def _phpa_lin(
    info: WorkloadInfo, target: float, forecast: ForecastSettings | None
) -> ReplicaPolicy:
    from autoscaler.backtest.phpa import LinearModel, PhpaPolicy  # noqa: PLC0415

    return PhpaPolicy(info, target, LinearModel())


def _hpa_on_forecast(
    info: WorkloadInfo, target: float, forecast: ForecastSettings | None
) -> ReplicaPolicy:
    from autoscaler.backtest.hpa_forecast import HpaOnForecastPolicy  # noqa: PLC0415 (heavy)

    return HpaOnForecastPolicy(info, target, forecast)


TargetedFactory = Callable[[WorkloadInfo, float, ForecastSettings | None], ReplicaPolicy]

# Policies with a target utilisation T, written NAME@T; their frontier sweeps T.
TARGETED: dict[str, TargetedFactory] = {
    "hpa": _hpa,
    "ehpa": _ehpa,
    "phpa-hw": _phpa_hw,
    "phpa-lin": _phpa_lin,
    "hpa-on-forecast": _hpa_on_forecast,
}


def is_foresight(name: str) -> bool:
    """``foresight`` or ``foresight:MODEL``."""
    return name == "foresight" or name.startswith("foresight:")


def split_target(name: str) -> tuple[str, float] | None:
    """``("ehpa", 0.7)`` for ``ehpa@0.7``; None for a name without a target."""
    family, at, value = name.partition("@")
    if not at:
        return None
    if family not in TARGETED:
        raise PolicyError(f"unknown policy {name!r}; valid: {', '.join(policy_names())}")
    try:
        target = float(value)
    except ValueError:
        target = -1.0
    if not 0 < target <= 1:
        raise PolicyError(f"policy {name!r}: the target utilisation must be a number in (0, 1]")
    return family, target


def _foresight(forecast: ForecastSettings | None) -> Callable[[WorkloadInfo], ReplicaPolicy]:
    def build(info: WorkloadInfo) -> ReplicaPolicy:
        from autoscaler.backtest.foresight import ForesightPolicy  # noqa: PLC0415 (heavy)

        return ForesightPolicy(info, forecast)

    return build


_FIXED: dict[str, PolicySpec] = {
    "foresight": PolicySpec("foresight", clairvoyant=False, honest=_foresight(None)),
    "oracle": PolicySpec("oracle", clairvoyant=True, seer=lambda w: OraclePolicy(w.demand, w.info)),
    "static": PolicySpec("static", clairvoyant=True, seer=lambda w: StaticPolicy(w.demand, w.info)),
}


def policy_names() -> list[str]:
    """Every valid name (``NAME@T`` stands for any target T in (0, 1]; ``foresight:MODEL`` for
    any forecast model)."""
    return [*_FIXED, "foresight:MODEL", *(f"{family}@T" for family in TARGETED)]


def make_policy(name: str, forecast: ForecastSettings | None = None) -> PolicySpec:
    """The policy called ``name``; raises :class:`PolicyError` listing the valid names.

    ``forecast`` configures foresight's forecasting (default: the defaults); it is also the
    forecast ``hpa-on-forecast@T`` reads. ``foresight:MODEL`` is foresight with that model.
    """
    if name.startswith("foresight:"):
        return PolicySpec(name, clairvoyant=False, honest=_foresight(_with_model(name, forecast)))
    if name == "foresight" and forecast is not None:
        return PolicySpec(name, clairvoyant=False, honest=_foresight(forecast))
    if name in _FIXED:
        return _FIXED[name]
    split = split_target(name)
    if split is None:
        raise PolicyError(f"unknown policy {name!r}; valid: {', '.join(policy_names())}")
    family, target = split
    factory = TARGETED[family]
    return PolicySpec(name, clairvoyant=False, honest=lambda i: factory(i, target, forecast))


def _with_model(name: str, forecast: ForecastSettings | None) -> ForecastSettings:
    # The registry is looked up when the name is used, so a model registered later counts.
    from autoscaler.forecast.base import ForecastError  # noqa: PLC0415

    model = name.removeprefix("foresight:")
    base = (forecast or ForecastSettings()).model_dump()
    try:
        return ForecastSettings.model_validate({**base, "model": model})
    except (ForecastError, ValueError) as e:
        raise PolicyError(f"policy {name!r}: {e}") from e
