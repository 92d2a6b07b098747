"""The horizontal policy: how many replicas, and why.

Order of rules, each of which may only keep or move the previous answer:

1. missing or stale load: hold the current count (fail-static, never scale down blind);
2. replicas for the larger of the forecast peak and the current load (the reactive floor: never
   fewer than the HPA formula asks for on current load) at the target utilisation;
3. scale-down tolerance and stabilisation: down only to a count with some spare capacity,
   and never below the highest recommendation of the window;
4. step limits up and down;
5. min/max replicas.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from autoscaler.policy.settings import HorizontalSettings

__all__ = [
    "HorizontalDecision",
    "HorizontalReason",
    "LoadSignal",
    "ReplicaState",
    "decide_replicas",
]


class HorizontalReason(enum.StrEnum):
    """Why the replica count is what it is (the last rule that set it)."""

    FORECAST = "forecast"
    REACTIVE_FLOOR = "reactive_floor"
    NO_FORECAST = "no_forecast_reactive"
    STABILISED = "scale_down_stabilised"
    STEP_UP_LIMIT = "max_step_up"
    STEP_DOWN_LIMIT = "max_step_down"
    MAX_REPLICAS = "max_replicas"
    MIN_REPLICAS = "min_replicas"
    NO_DATA = "fail_static_no_data"
    STALE_DATA = "fail_static_stale_data"


@dataclass(frozen=True)
class LoadSignal:
    """Current total load of the workload and the forecast peak, in the same unit."""

    load: float | None
    observed_at: float | None
    forecast_peak: float | None = None


@dataclass(frozen=True)
class ReplicaState:
    """The workload as it is, and the recommendations the policy made recently."""

    current: int
    capacity_per_replica: float  # load one replica serves at 100 % of its request
    recommendations: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class HorizontalDecision:
    """Replicas to set, the reason, and the state to pass to the next call."""

    replicas: int
    reason: HorizontalReason
    recommended: int  # before stabilisation, limits and bounds
    state: ReplicaState


def decide_replicas(
    signal: LoadSignal, state: ReplicaState, settings: HorizontalSettings, now: float
) -> HorizontalDecision:
    """The replica count for ``now``; pure."""
    current = state.current
    if signal.load is None or signal.observed_at is None:
        return _hold(state, settings, HorizontalReason.NO_DATA)
    if now - signal.observed_at > settings.stale_after_seconds:
        return _hold(state, settings, HorizontalReason.STALE_DATA)
    if state.capacity_per_replica <= 0:
        raise ValueError(f"capacity per replica must be > 0, got {state.capacity_per_replica}")

    load = max(0.0, signal.load)
    if signal.forecast_peak is None:
        need, reason = load, HorizontalReason.NO_FORECAST
    elif signal.forecast_peak > load:
        need, reason = signal.forecast_peak, HorizontalReason.FORECAST
    else:
        need, reason = load, HorizontalReason.REACTIVE_FLOOR
    per_replica = state.capacity_per_replica * settings.target_utilisation
    # The small tolerance keeps float noise (3.0000000001 replicas) from adding a pod.
    recommended = max(1, math.ceil(need / per_replica - 1e-9))
    if recommended < current and settings.scale_down_tolerance > 0:
        # Up at need > n x c, down only once need x (1 + tolerance) fits n - 1: a band, so
        # that a forecast hovering at a boundary does not flap one replica up and down.
        spare = math.ceil(need * (1 + settings.scale_down_tolerance) / per_replica - 1e-9)
        recommended = max(recommended, min(current, spare))

    window = settings.scale_down_stabilisation_seconds
    recs = tuple((t, r) for t, r in state.recommendations if t > now - window)
    recs = (*recs, (now, recommended))
    desired = recommended
    if desired < current:
        stabilised = min(current, max(r for _, r in recs))
        if stabilised > desired:
            desired, reason = stabilised, HorizontalReason.STABILISED
    if settings.max_step_up is not None and desired > current + settings.max_step_up:
        desired, reason = current + settings.max_step_up, HorizontalReason.STEP_UP_LIMIT
    if settings.max_step_down is not None and desired < current - settings.max_step_down:
        desired, reason = current - settings.max_step_down, HorizontalReason.STEP_DOWN_LIMIT
    if desired > settings.max_replicas:
        desired, reason = settings.max_replicas, HorizontalReason.MAX_REPLICAS
    if desired < settings.min_replicas:
        desired, reason = settings.min_replicas, HorizontalReason.MIN_REPLICAS
    new_state = ReplicaState(desired, state.capacity_per_replica, recs)
    return HorizontalDecision(desired, reason, recommended, new_state)


def _hold(
    state: ReplicaState, settings: HorizontalSettings, reason: HorizontalReason
) -> HorizontalDecision:
    held = min(max(state.current, settings.min_replicas), settings.max_replicas)
    if held != state.current:
        reason = (
            HorizontalReason.MAX_REPLICAS
            if held == settings.max_replicas
            else HorizontalReason.MIN_REPLICAS
        )
    new_state = ReplicaState(held, state.capacity_per_replica, state.recommendations)
    return HorizontalDecision(held, reason, state.current, new_state)
