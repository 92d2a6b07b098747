"""CPU requests from calibrated forecasts: the conformal margin, the choice, the risk."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from autoscaler.backtest.vertical import ForesightVertical, replay_vertical
from autoscaler.policy import sizer as sizer_module
from autoscaler.policy.settings import VerticalSettings
from autoscaler.policy.sizer import (
    BURST_HOURS,
    CLASS_EXCEEDANCES,
    EXCESS_DAYS,
    MAX_RISK_CUT,
    RECORD_DAYS,
    Calibration,
    ContainerSizer,
    _after_burst,
)
from autoscaler.policy.vertical import (
    CPU_FORECASTS,
    VerticalReason,
    calibrated_target,
    cpu_forecasts,
)

HOUR = 3600.0
DAY = 86_400.0
S = VerticalSettings.model_validate({})


def test_the_margin_is_the_conformal_rank_of_the_ratios() -> None:
    ratios = np.arange(1.0, 21.0)[:, None]  # 1..20
    # ⌈21 × 0.9⌉ = 19th smallest of 20; at risk 0 the rank is past the end: the largest.
    assert calibrated_target(np.array([1.0]), ratios, 0.1) == (19.0, 0)
    assert calibrated_target(np.array([2.0]), ratios, 0.0) == (40.0, 0)
    assert calibrated_target(np.array([1.0]), np.empty((0, 1)), 0.1) is None
    assert calibrated_target(np.array([1.0]), np.zeros((5, 1)), 0.1) is None


def test_the_forecast_that_would_have_left_the_least_slack_wins() -> None:
    rng = np.random.default_rng(1)
    noise = rng.uniform(0.5, 1.5, 500)
    # A tight forecast (ratios ~1) against a loose one (ratios spread ×10), forecasts equal.
    ratios = np.column_stack([1.0 + 0.01 * noise, noise * 10 / noise.max()])
    target, best = calibrated_target(np.array([4.0, 4.0]), ratios, 0.01) or (0.0, -1)
    assert best == 0
    assert target == pytest.approx(4.0 * np.quantile(ratios[:, 0], 0.99), rel=0.01)


def test_yesterdays_hour_is_scaled_to_todays_level() -> None:
    every = 300.0
    times = np.arange(0, 2 * DAY, every)
    # A daily peak at hour 10, and today everything twice yesterday's level.
    hour = (times % DAY) // HOUR
    usage = np.where(hour == 10, 5.0, 1.0) * np.where(times >= DAY, 2.0, 1.0)
    now = DAY + 10 * HOUR
    seen = times < now
    got = _forecasts(times[seen], usage[seen], now, 3.0)
    assert got["recent"] == pytest.approx(2.0)
    assert got["yesterday"] == pytest.approx(10.0)
    assert got["histogram"] == 3.0
    assert (got["recent_or_yesterday"], got["any"]) == (pytest.approx(10.0), pytest.approx(10.0))
    # With one day of history the median of the days' shapes is yesterday's.
    assert (got["daily"], got["recent_or_daily"]) == (pytest.approx(10.0), pytest.approx(10.0))
    assert cpu_forecasts(times[seen], usage[seen], 10 * DAY, 3.0, S) is None


def _forecasts(
    times: np.ndarray, usage: np.ndarray, now: float, histogram: float
) -> dict[str, float]:
    """:func:`cpu_forecasts` by name."""
    f = cpu_forecasts(times, usage, now, histogram, S)
    assert f is not None
    return dict(zip(CPU_FORECASTS, f.tolist(), strict=True))


def test_a_step_in_load_counts_once_in_the_daily_shape_and_twice_in_yesterdays() -> None:
    every = 300.0
    times = np.arange(0, 8 * DAY, every)
    drop = 6 * DAY + 12 * HOUR  # from 10 to 5, once
    usage = np.where(times < drop, 10.0, 5.0)
    now = drop + DAY  # a day later: yesterday's hour is after the drop, the hours before it not
    got = _forecasts(times[times < now], usage[times < now], now, 10.0)
    assert got["recent"] == pytest.approx(5.0)
    # Yesterday's hour at 5 against the hours before it at 10, times today's level of 5.
    assert got["yesterday"] == pytest.approx(2.5)
    # The other days' shapes are flat: their median is, and the level stays at 5.
    assert got["daily"] == pytest.approx(5.0)


def _daily(days: int, every: float = 300.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = np.arange(0, days * DAY, every)
    shape = 2 + np.sin(2 * np.pi * times / DAY)
    return times, shape * rng.uniform(0.9, 1.1, len(times))


def test_calibration_reads_only_forecasts_made_before_each_sample() -> None:
    times, usage = _daily(9)
    cut = int(8 * DAY / 300)

    def request(u: np.ndarray) -> float:
        sizer = ContainerSizer("cpu", S, first_bucket=0.01)
        for t, v in zip(times[:cut], u[:cut], strict=True):
            sizer.observe(float(t), float(v))
        return sizer.decide(float(times[cut]), 1.0).target

    later = usage.copy()
    later[cut:] *= 50
    assert request(usage) == request(later)


def test_a_fixed_throttle_target_is_met_on_a_stationary_container() -> None:
    times, usage = _daily(16, seed=2)
    first = int(8 * DAY / 300)
    # Without hysteresis every request is its calibrated target (the hysteresis holds some
    # requests below theirs, so the realised fraction runs above the target).
    settings = VerticalSettings(cpu_throttle_target=0.05, hysteresis=0)
    score = replay_vertical(
        times, usage, first, "cpu", ForesightVertical("cpu", settings, first_bucket=0.01)
    )
    assert 3.5 <= score.throttled_pct <= 6.5


def test_a_smooth_daily_container_gets_less_slack_than_the_histogram_target() -> None:
    times, usage = _daily(16, seed=3)
    first = int(8 * DAY / 300)
    calibrated = replay_vertical(
        times, usage, first, "cpu", ForesightVertical("cpu", S, first_bucket=0.01)
    )
    off = VerticalSettings(cpu_calibration_days=0)
    plain = replay_vertical(
        times, usage, first, "cpu", ForesightVertical("cpu", off, first_bucket=0.01)
    )
    assert calibrated.slack_pct < plain.slack_pct
    assert calibrated.throttled_pct <= 1.0


def test_without_calibration_the_recent_percentile_floors_the_histogram_target() -> None:
    times, usage = _daily(3)
    off = VerticalSettings(cpu_calibration_days=0)
    sizer = ContainerSizer("cpu", off, first_bucket=0.01)
    for t, v in zip(times, usage, strict=True):
        sizer.observe(float(t), float(v))
    now = float(times[-1])
    decision = sizer.decide(now, 1.0)
    recent = usage[times >= now - off.cpu_recent_hours * HOUR]
    p90 = sizer.histogram.percentile(0.9) * off.forecast_margin
    assert decision.target == pytest.approx(max(p90, float(np.quantile(recent, 0.9))))
    calibrated = ContainerSizer("cpu", S, first_bucket=0.01)
    for t, v in zip(times, usage, strict=True):
        calibrated.observe(float(t), float(v))
    assert calibrated.decide(now, 1.0).reason in {VerticalReason.FORECAST, VerticalReason.TARGET}


def _spiked(days: int, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    # Level noise with one spike on day 3: every calibrated margin covers the spike for a
    # week, the histogram's P90 barely sees it.
    rng = np.random.default_rng(seed)
    times = np.arange(0, days * DAY, 300.0)
    usage = rng.uniform(0.9, 1.0, len(times))
    usage[int(3 * DAY / 300)] = 2.0
    return times, usage


def _sizer(settings: VerticalSettings, times: np.ndarray, usage: np.ndarray) -> ContainerSizer:
    sizer = ContainerSizer("cpu", settings, first_bucket=0.01)
    for t, v in zip(times, usage, strict=True):
        sizer.observe(float(t), float(v))
    return sizer


def test_the_histogram_target_holds_while_the_calibrated_record_leaves_more_slack() -> None:
    times, usage = _spiked(8)
    now = 8 * DAY
    fallback = _sizer(S, times, usage).decide(now, 1.0)
    p90 = _sizer(S, times, usage).histogram.percentile(S.target_percentile)
    assert (fallback.reason, fallback.target) == (VerticalReason.TARGET, p90 * S.margin)
    forced = _sizer(VerticalSettings(cpu_fallback=False), times, usage).decide(now, 1.0)
    assert forced.reason == VerticalReason.FORECAST
    assert forced.target > 1.5 > fallback.target


def test_without_a_record_the_histogram_target_holds() -> None:
    times, usage = _daily(1)
    early = times < HOUR  # one forecast made, no sample judged on its calibrated target yet
    sizer = _sizer(S, times[early], usage[early])
    assert sizer.decide(HOUR, 1.0).reason == VerticalReason.TARGET


def test_a_calibrated_target_with_a_better_record_sets_the_request() -> None:
    times, usage = _daily(9, seed=5)
    decision = _sizer(S, times, usage).decide(float(times[-1]) + 300, 1.0)
    assert decision.reason == VerticalReason.FORECAST


def test_each_calibrated_target_of_the_record_was_made_from_earlier_usage() -> None:
    times, usage = _spiked(5)
    full = _sizer(S, times, usage)
    # One record a few hours after the spike, one long after it.
    records = [r for r in full._forecasts if 3 * DAY + 2 * HOUR <= r.made < 3 * DAY + 3 * HOUR]
    records.append(full._forecasts[-30])
    assert [r.after_burst for r in records] == [True, False]
    for record in records:
        before = times < record.made
        alone = _sizer(S, times[before], usage[before])
        times_before, usage_before = alone._arrays()
        calibration = alone._calibrate_now(times_before, usage_before, record.made)
        assert calibration is not None
        assert (calibration.target, calibration.plain) == (record.calibrated, record.plain)
        kind = _after_burst(times_before, usage_before, record.made, alone._histogram_target())
        assert kind == record.after_burst


def test_only_the_last_record_days_decide_between_the_targets() -> None:
    times, usage = _daily(9, seed=5)
    # An hour after the last sample, so that the decision makes a record and calibrates anew.
    now = float(times[-1]) + HOUR
    sizer = _sizer(S, times, usage)
    assert sizer.decide(now, 1.0).reason == VerticalReason.FORECAST

    def with_record_spoiled(before: float) -> VerticalReason:
        # Calibrated targets made before ``before`` a hundred times too large: on the usage
        # that followed them they left far more slack than the histogram target.
        spoiled = _sizer(S, times, usage)
        spoiled._forecasts = deque(
            r._replace(calibrated=r.calibrated * 100) if r.made < before else r
            for r in spoiled._forecasts
        )
        return spoiled.decide(now, 1.0).reason

    old = now - RECORD_DAYS * DAY - 2 * HOUR
    assert with_record_spoiled(old) == VerticalReason.FORECAST
    assert with_record_spoiled(now) == VerticalReason.TARGET


# An unadjusted target no sample exceeds.
NEVER = 1e12


def _calibrate_with_plains(
    risk: float, plain: float | None, start: float = math.inf, end: float = 0.0
) -> Calibration:
    """A calibration of a daily container whose records made from ``start`` to ``end``
    seconds before it had unadjusted targets of ``plain`` (None: as made), and the others
    targets never exceeded."""
    times, usage = _daily(9, seed=5)
    now = float(times[-1]) + HOUR
    sizer = _sizer(VerticalSettings(cpu_throttle_target=risk), times, usage)
    if plain is not None:
        sizer._forecasts = deque(
            r._replace(plain=plain if now - start <= r.made < now - end else NEVER)
            for r in sizer._forecasts
        )
    calibration = sizer._calibrate_now(*sizer._arrays(), now)
    assert calibration is not None
    return calibration


def test_a_risk_its_targets_exceeded_is_cut_at_most_by_the_largest_cut() -> None:
    # Every sample above its record's unadjusted target: five times the risk of 0.2, cut to
    # a quarter, the target of the risk 0.05.
    exceeded = _calibrate_with_plains(0.2, plain=0.0)
    assert exceeded.target == _calibrate_with_plains(0.2 / MAX_RISK_CUT, None).plain
    assert exceeded.target > exceeded.plain
    # Never exceeded: the risk is not raised, the target stays the unadjusted one.
    never = _calibrate_with_plains(0.2, plain=NEVER)
    assert never.target == never.plain == exceeded.plain


def test_a_histogram_target_far_below_usage_shows_no_less_than_zero_slack() -> None:
    times, usage = _daily(9, seed=5)
    now = float(times[-1]) + HOUR
    sizer = _sizer(S, times, usage)
    # Two hours of the record with a histogram target a thousand times below usage: all of
    # it used, zero slack, not a thousandfold negative slack that outweighs the other days.
    since = now - RECORD_DAYS * DAY
    sizer._forecasts = deque(
        r._replace(histogram_target=r.histogram_target / 1000)
        if since <= r.made < since + 2 * HOUR
        else r
        for r in sizer._forecasts
    )
    assert sizer.decide(now, 1.0).reason == VerticalReason.FORECAST


def test_an_excess_of_the_last_day_cuts_the_risk_though_the_week_shows_none() -> None:
    # Exceeded at every sample of the last day, never before: a seventh of the week, less
    # than the risk of 0.2 over the calibration days, five times it over the last day.
    lately = _calibrate_with_plains(0.2, plain=0.0, start=EXCESS_DAYS * DAY)
    assert lately.target == _calibrate_with_plains(0.2 / MAX_RISK_CUT, None).plain
    # The same excess a day earlier: the week's excess alone, no cut.
    day = EXCESS_DAYS * DAY
    earlier = _calibrate_with_plains(0.2, plain=0.0, start=2 * day, end=day)
    assert earlier.target == earlier.plain


def _clustered(days: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Level noise, and on every other pair of days a tenth of the samples in bursts two to
    # three times the level: calm days and bursty days.
    rng = np.random.default_rng(seed)
    times = np.arange(0, days * DAY, 300.0)
    usage = rng.uniform(0.9, 1.0, len(times))
    bursty = (times // (2 * DAY)) % 2 == 1
    spikes = bursty & (rng.uniform(size=len(times)) < 0.1)
    usage[spikes] = rng.uniform(2.0, 3.0, int(spikes.sum()))
    return times, usage, bursty


def _exceeded_by_kind(days: int = 24, first_day: int = 9) -> tuple[float, float]:
    """Share of samples above the calibrated request at a risk of 5 %, on bursty days and
    on calm ones (their first BURST_HOURS left out)."""
    times, usage, bursty = _clustered(days)
    settings = VerticalSettings(cpu_throttle_target=0.05, hysteresis=0, cpu_fallback=False)
    sizer = ContainerSizer("cpu", settings, first_bucket=0.01)
    above = []
    for t, u in zip(times, usage, strict=True):
        if t >= first_day * DAY:
            above.append(u > sizer.decide(float(t), 1.0).request)
        sizer.observe(float(t), float(u))
    scored = times >= first_day * DAY
    exceeded, after = np.asarray(above), bursty[scored]
    calm = ~after & ~np.roll(after, int(BURST_HOURS * HOUR / 300))
    return float(exceeded[after].mean()), float(exceeded[calm].mean())


def test_calm_hours_and_hours_after_a_burst_each_get_their_own_margin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Calibrated on the hours of their own kind, both kinds are exceeded about as often as
    # the risk allows; one margin for both would cover nearly every calm sample (slack) and
    # fall short after bursts.
    bursty, calm = _exceeded_by_kind()
    assert 0.03 <= bursty <= 0.08
    assert 0.03 <= calm <= 0.08
    monkeypatch.setattr(sizer_module, "CLASS_EXCEEDANCES", math.inf)
    bursty, calm = _exceeded_by_kind()
    assert bursty > 0.05 and calm < 0.01


def test_the_setting_names_the_hours_after_a_burst_and_when_they_count() -> None:
    described = VerticalSettings.model_fields["cpu_calibration_days"].description or ""
    assert f"within {BURST_HOURS:g} hours after usage above the histogram target" in described
    assert f"would exceed it {CLASS_EXCEEDANCES:g} times at the risk" in described
