"""Replica policies by name: ``foresight``, ``hpa@T``, ``oracle``, ``static``.

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

__all__ = ["DEFAULT_POLICIES", "PolicyError", "PolicySpec", "make_policy", "policy_names"]

DEFAULT_POLICIES = ("foresight", "hpa@0.5", "hpa@0.7", "hpa@0.9", "oracle", "static")


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
    """Every valid name (``hpa@T`` stands for any target T in (0, 1])."""
    return [*_FIXED, "hpa@T"]


def make_policy(name: str, forecast: ForecastSettings | None = None) -> PolicySpec:
    """The policy called ``name``; raises :class:`PolicyError` listing the valid names.

    ``forecast`` configures foresight's forecasting (default: the defaults).
    """
    if name == "foresight" and forecast is not None:
        return PolicySpec(name, clairvoyant=False, honest=_foresight(forecast))
    if name in _FIXED:
        return _FIXED[name]
    if name.startswith("hpa@"):
        try:
            target = float(name.removeprefix("hpa@"))
        except ValueError:
            target = -1.0
        if 0 < target <= 1:
            return PolicySpec(name, clairvoyant=False, honest=lambda i: HpaPolicy(i, target))
        raise PolicyError(f"policy {name!r}: the HPA target must be a number in (0, 1]")
    raise PolicyError(f"unknown policy {name!r}; valid: {', '.join(policy_names())}")
