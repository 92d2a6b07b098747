"""The VPA's rule as foresight shadows it, and the CPU risk it sets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autoscaler.policy.settings import VerticalSettings
from autoscaler.policy.sizer import RAISE_BELOW, RAISE_LIMIT, SETTLING_DAYS, ContainerSizer
from autoscaler.policy.vertical import DecayingHistogram
from autoscaler.policy.vpa import (
    MIN_CHANGE,
    POD_LIFETIME_THRESHOLD,
    UPDATER_EVERY,
    ShadowVpa,
    recommendation,
    updater_evicts,
)

HOUR = 3600.0
DAY = 86_400.0
S = VerticalSettings.model_validate({})
BOUNDS = (1.0, 2.0, 4.0)  # lower, target, upper


def test_the_updater_keeps_a_young_pod_in_bounds_and_evicts_the_rest() -> None:
    young, old = HOUR, POD_LIFETIME_THRESHOLD
    assert not updater_evicts(3.0, BOUNDS, young)
    assert updater_evicts(0.5, BOUNDS, young)  # below the lower bound
    assert updater_evicts(5.0, BOUNDS, young)  # above the upper bound
    assert updater_evicts(3.0, BOUNDS, old)  # old, and the target 33 % away
    near = 2.0 * (1 + MIN_CHANGE / 2)
    assert not updater_evicts(near, BOUNDS, old)
    assert updater_evicts(3.0, BOUNDS, young, quick_oom=True)
    assert not updater_evicts(0.5, (0.0, 0.0, 0.0), old)  # nothing to give


def test_the_bounds_widen_while_the_recommender_has_little_history() -> None:
    h = DecayingHistogram(DAY, 0.01)
    for v in np.linspace(1.0, 2.0, 100):
        h.add(float(v), 0.0)
    lower, target, upper = recommendation(h, S, 0.0)
    assert upper == math.inf
    assert target == pytest.approx(h.percentile(S.target_percentile) * S.margin)
    lo1, _, up1 = recommendation(h, S, 1.0)
    lo7, _, up7 = recommendation(h, S, 7.0)
    assert up1 == pytest.approx(2 * up7 * 7 / 8)  # × (1 + 1/c)
    assert lo1 < lo7 < lower


def test_the_shadow_holds_its_request_until_the_updater_would_evict() -> None:
    h = DecayingHistogram(DAY, 0.01)
    shadow = ShadowVpa(h, S)
    assert shadow.step(0.0) is None  # nothing seen
    noise = np.random.default_rng(3).uniform(0.5, 1.5, 3 * 1440)

    def day(d: int, level: float) -> None:
        for minute in range(d * 1440, (d + 1) * 1440):
            h.add(level * float(noise[minute]), 60.0 * minute)
            shadow.saw(60.0 * minute)

    day(0, 1.0)
    first = shadow.step(DAY)
    assert first == pytest.approx(h.percentile(S.target_percentile) * S.margin)
    # Usage rises 5 %: inside the bounds, and under the 10 % that would evict an old pod.
    day(1, 1.05)
    assert shadow.step(2 * DAY) == first
    # Usage triples: the request falls below the lower bound and the pod gets the new target.
    day(2, 3.0)
    moved = shadow.step(3 * DAY)
    assert moved is not None and moved > 2 * first
    # The updater passes once a minute: a tenfold sample is seen at its next pass only.
    for _ in range(10_000):
        h.add(30.0, 3 * DAY)
    assert shadow.step(3 * DAY + UPDATER_EVERY / 2) == moved
    assert (shadow.step(3 * DAY + UPDATER_EVERY) or 0.0) > 5 * moved


def _held(level: float, days: float = 1.0) -> tuple[DecayingHistogram, ShadowVpa, float]:
    """A shadow holding the target of ``days`` of usage spread around ``level``."""
    h = DecayingHistogram(DAY, 0.01)
    shadow = ShadowVpa(h, S)
    noise = np.random.default_rng(5).uniform(0.5, 1.5, int(days * 1440))
    for minute, x in enumerate(noise):
        h.add(level * float(x), 60.0 * minute)
        shadow.saw(60.0 * minute)
    at = days * DAY
    held = shadow.step(at)
    assert held is not None
    return h, shadow, held


def test_a_young_pod_leaves_only_bounds_that_have_narrowed_with_confidence() -> None:
    h, shadow, held = _held(1.0)
    # Usage collapses to a tenth at once: the upper bound falls below the request held an
    # hour ago, at one day's confidence (× 2). With no confidence the bound is infinite.
    for _ in range(200_000):
        h.add(0.1, DAY + HOUR)
    shadow.saw(DAY + HOUR)
    _, _, upper = recommendation(h, S, 1.0 + HOUR / DAY)
    assert upper < held
    moved = shadow.step(DAY + HOUR)
    assert moved is not None and moved < held / 5


def test_an_evicted_pod_is_young_again() -> None:
    h, shadow, held = _held(1.0, days=2.0)
    # Usage rises 30 % for a while: inside the bounds, an old pod is evicted for it.
    for minute in range(2 * 1440, 2 * 1440 + 720):
        h.add(1.3 * (0.5 + (minute % 100) / 100), 60.0 * minute)
        shadow.saw(60.0 * minute)
    first = shadow.step(2 * DAY + 12 * HOUR)
    assert first is not None and first != held
    # Another 30 % an hour later: the new pod is an hour old, and keeps its request until
    # it has lived 12 hours.
    for minute in range(2 * 1440 + 720, 2 * 1440 + 780):
        for _ in range(40):
            h.add(2.0 * (0.5 + (minute % 100) / 100), 60.0 * minute)
        shadow.saw(60.0 * minute)
    assert shadow.step(2 * DAY + 13 * HOUR) == first
    assert shadow.step(2 * DAY + 24 * HOUR) != first


def _sizer_with_tally(
    settings: VerticalSettings, shadow_exceeded: int, own_exceeded: int, n: int = 100
) -> ContainerSizer:
    sizer = ContainerSizer("cpu", settings, first_bucket=0.01)
    sizer._first_seen = 0.0
    for k in range(n):
        sizer._count(10 * DAY + k, k < shadow_exceeded, k < own_exceeded)
    return sizer


def _risk(sizer: ContainerSizer, exceeded: np.ndarray, made: np.ndarray) -> float:
    used = np.where(exceeded, 2.0, 0.5)
    return sizer._risk(10 * DAY + 100, made, used, np.ones(len(made)))


SETTLED = np.full(100, 5 * DAY)
TENTH = np.arange(100) < 10  # the histogram targets of the settled days: 10 % exceeded


def test_the_risk_rises_toward_the_shadows_rate_while_foresight_was_exceeded_less() -> None:
    # The shadow exceeded at 20 %, foresight at 5 %: the risk is the shadow's rate.
    assert _risk(_sizer_with_tally(S, 20, 5), TENTH, SETTLED) == pytest.approx(0.2)
    # At most RAISE_LIMIT times the histogram targets' rate.
    capped = _risk(_sizer_with_tally(S, 90, 5), TENTH, SETTLED)
    assert capped == pytest.approx(0.1 * RAISE_LIMIT)
    # foresight nearly caught up with the shadow: the histogram targets' rate again.
    assert _risk(_sizer_with_tally(S, 20, 20), TENTH, SETTLED) == pytest.approx(0.1)
    below = math.ceil(RAISE_BELOW * 20)
    assert _risk(_sizer_with_tally(S, 20, below), TENTH, SETTLED) == pytest.approx(0.1)
    assert _risk(_sizer_with_tally(S, 20, below - 1), TENTH, SETTLED) == pytest.approx(0.2)
    # The shadow exceeded less often than the histogram targets: never lowered by it.
    assert _risk(_sizer_with_tally(S, 2, 0), TENTH, SETTLED) == pytest.approx(0.1)


def test_the_tally_forgets_what_left_the_calibration_days() -> None:
    sizer = _sizer_with_tally(S, 20, 5)
    # Counted by the hour: an hour leaves once all of it is before the calibration days.
    week = S.cpu_calibration_days * DAY
    sizer._count(10 * DAY + week + HOUR - 1, False, False)
    assert (sizer._tallied, sizer._shadow_exceeded, sizer._own_exceeded) == (101, 20, 5)
    sizer._count(10 * DAY + week + HOUR, False, False)
    assert (sizer._tallied, sizer._shadow_exceeded, sizer._own_exceeded) == (2, 0, 0)


def test_the_first_days_histogram_targets_do_not_set_the_risk() -> None:
    sizer = _sizer_with_tally(S, 0, 0)
    made = np.where(np.arange(100) < 50, 0.5 * SETTLING_DAYS * DAY, 2 * SETTLING_DAYS * DAY)
    first_day_only = np.arange(100) < 50
    assert _risk(sizer, first_day_only, made) == 0.0
    assert _risk(sizer, ~first_day_only, made) == pytest.approx(1.0)
    # Before any settled target there is nothing else to go by.
    young = np.full(100, 0.5 * SETTLING_DAYS * DAY)
    assert _risk(sizer, TENTH, young) == pytest.approx(0.1)


def _drifting(days: int) -> tuple[np.ndarray, np.ndarray]:
    # A daily shape on a level that grows 15 % a day: the VPA holds a request inside its wide
    # bounds for days, and usage outgrows it more often than it outgrows the hourly target.
    rng = np.random.default_rng(7)
    times = np.arange(0, days * DAY, 300.0)
    shape = (2 + np.sin(2 * np.pi * times / DAY)) * (1 + 0.15 * times / DAY)
    return times, shape * rng.uniform(0.9, 1.1, len(times))


def _calibrated(
    settings: VerticalSettings, bounds: tuple[float, float]
) -> tuple[float, ContainerSizer]:
    """The calibrated target after 10 drifting days, foresight deciding every 5 minutes from
    day 8 on within ``bounds`` (min, max allowed): a request never or always exceeded."""
    times, usage = _drifting(10)
    sizer = ContainerSizer("cpu", settings, first_bucket=0.01)
    start = 8 * DAY
    for t, v in zip(times, usage, strict=True):
        if t >= start:
            sizer.decide(float(t), 1.0, *bounds)
        sizer.observe(float(t), float(v))
    now = float(times[-1]) + 300.0
    calibration = sizer._calibrate_now(*sizer._arrays(), now)
    assert calibration is not None
    return calibration.target, sizer


ROOMY = (1e6, math.inf)  # every decision at 10⁶ cores: never exceeded
TIGHT = (0.0, 1e-6)  # every decision at 10⁻⁶ cores: always exceeded


def test_requests_exceeded_less_often_than_the_shadows_take_more_risk() -> None:
    roomy, sizer = _calibrated(S, ROOMY)
    assert sizer._shadow_exceeded > 0 == sizer._own_exceeded
    tight, other = _calibrated(S, TIGHT)
    assert other._own_exceeded > other._shadow_exceeded
    assert roomy < tight
    # A fixed risk is not moved by either.
    fixed = VerticalSettings(cpu_throttle_target=0.05)
    assert _calibrated(fixed, ROOMY)[0] == _calibrated(fixed, TIGHT)[0]


def test_only_samples_after_the_first_decision_and_the_first_day_are_counted() -> None:
    sizer = ContainerSizer("cpu", S, first_bucket=0.01)
    for minute in range(3 * 1440):
        at = 60.0 * minute
        if minute == 720:  # the first decision, half a day in
            sizer.decide(at, 1.0, *TIGHT)
        sizer.observe(at, 1.0)
    settled = int(SETTLING_DAYS * 1440)
    assert sizer._tallied == sizer._own_exceeded == 3 * 1440 - settled


def test_counts_older_than_the_calibration_days_are_not_read() -> None:
    sizer = _sizer_with_tally(S, 20, 5)
    later = 10 * DAY + S.cpu_calibration_days * DAY + 2 * HOUR
    # No sample for a week: the old counts raise nothing.
    assert sizer._risk(later, SETTLED, np.where(TENTH, 2.0, 0.5), np.ones(100)) == 0.1
    assert sizer._tallied == 0
