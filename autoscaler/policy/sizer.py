"""A container resource's request over time: usage in, :class:`VerticalDecision` out.

Keeps what :func:`~autoscaler.policy.vertical.recommend_request` needs between decisions:
the decaying histogram, the recent usage for
:func:`~autoscaler.policy.vertical.forecast_need` and
:func:`~autoscaler.policy.vertical.cpu_forecasts` (trimmed to the longest window they read),
the usage at the latest OOM kill and, for CPU, the forecasts made every hour with the
histogram target, the calibrated target and the kind (calm or after a burst) of that hour:
the calibration set of :func:`~autoscaler.policy.vertical.calibrated_target`, and the record
that decides whether the calibrated target or the histogram target sets the request. A
sample is judged against the forecasts and targets made before it was seen, so neither looks
ahead.

The calibrated CPU target is made with each hourly record, and a decision between two
records applies the last one, however often the controller decides (every
``controller.resize_every_seconds``). Its margin is calibrated on how usage stood against
forecasts an hour old at most; a target made from fresher forecasts every few minutes would
follow each dip down and be exceeded about twice as often as its risk allows. The histogram
target, its bounds and an OOM kill still act at each decision.

Bursts come in clusters: the hours after usage rose above the histogram target (within
:data:`BURST_HOURS`) see more of them than calm hours do. Each record notes its kind, and a
target is calibrated on the samples of records of its own kind (Mondrian conformal
prediction, one calibration set per class) once they are enough for its risk
(:data:`CLASS_EXCEEDANCES`): a calm hour gets the narrower margin calm hours have needed, an
hour after a burst the wider one, where a single margin for both would leave slack in the
calm hours and throttle after bursts. The risk is the same for both kinds.

A margin calibrated on the last days is exceeded more often in the hours that follow when
load shifts (a burst that raised the risk moves on, a calm spell follows): each record
keeps the target its unadjusted risk gave, and when those targets were exceeded more often
than the risk allows, over the calibration days or over the last :data:`EXCESS_DAYS`, the
risk is cut by the larger excess (to a :data:`MAX_RISK_CUT`-th at most) for the next
target. The cut never raises it: a target exceeded less often than its risk is left alone.
On a stationary container the excess is about 1 and the risk stands.

The risk itself (unless ``cpu_throttle_target`` fixes it) is how often the VPA rule would
have been exceeded: the share of samples above the histogram target of their hour, on the
calibration days after the container's first :data:`SETTLING_DAYS`. The VPA holds a request
for hours or days, though, so it is exceeded more often than its hourly target where load
drifts. Each sizer therefore keeps a :class:`~autoscaler.policy.vpa.ShadowVpa`, the request
the VPA's updater would hold on the same histogram from foresight's first decision on, and
counts, for every sample after the first day, whether the shadow's request and the request of
foresight's last decision were exceeded. While foresight's were exceeded less often than the
shadow's over the calibration days (less than :data:`RAISE_BELOW` as often), the risk may
rise to the shadow's rate, up to :data:`RAISE_LIMIT` times the histogram rate: the
throttling the VPA would have spent is spent on less slack, and once foresight's own count
nears the shadow's the risk falls back. Counting foresight's decisions rather than the pods'
requests keeps the count foresight's own in ``Recommend`` mode and while a resize is held
back.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from autoscaler.policy.settings import VerticalSettings
from autoscaler.policy.vertical import (
    DAY,
    HOUR,
    DecayingHistogram,
    FloatArray,
    VerticalDecision,
    calibrated_target,
    cpu_forecasts,
    forecast_need,
    recommend_request,
)
from autoscaler.policy.vpa import ShadowVpa

__all__ = [
    "BURST_HOURS",
    "CLASS_EXCEEDANCES",
    "EXCESS_DAYS",
    "MAX_RISK_CUT",
    "RAISE_BELOW",
    "RAISE_LIMIT",
    "RECORD_DAYS",
    "SETTLING_DAYS",
    "Calibration",
    "ContainerSizer",
]

# Days of the record that decide between the calibrated and the histogram target. Shorter
# than the calibration days: after a change of level (a load that drops, a new baseline)
# the week before says which target suited the old one, and the histogram's own day-long
# half-life already lags; two days are enough samples for a mean of ratios at one a minute
# or one every five. Measured on the shared traces (bench.vertical), one to four days all
# gave the same wins; two kept the larger margins.
RECORD_DAYS = 2.0
# The risk of a calibrated target is divided by at most this when the targets of the
# calibration days were exceeded more often than it allowed: a bound, so that one odd week
# cannot push the margin to the largest ratio seen. On the shared traces (bench.vertical)
# the cut seldom reaches it: 4 and 10 gave the same wins.
MAX_RISK_CUT = 4.0
# The excess is the larger of the calibration days' and that of this last day, so that a
# change of regime is answered within the day rather than once it fills most of the week.
# Measured on the shared traces (bench.vertical): half a day, one and two days gave 15, 16
# and 15 of 21 CPU wins (one day took the NAB asg trace under the VPA's throttling).
EXCESS_DAYS = 1.0
# The risk is measured on histogram targets made once the container has this much usage
# behind it: a histogram that has not yet seen a daily peak is exceeded at every one, which
# says nothing of how often the VPA exceeds its target once it has. Measured on the shared
# traces (bench.vertical): crane 15, a trace the VPA never throttles, was throttled at the
# risk of its first day.
SETTLING_DAYS = 1.0
# While foresight's requests were exceeded less often than the shadow VPA's over the
# calibration days, the risk may rise to the shadow's rate, up to this multiple of the
# histogram targets' rate. Measured on the shared traces (bench.vertical, with
# SETTLING_DAYS and RAISE_BELOW): 2, 3 and 4 gave 18, 19 and 18 of 21 CPU wins; without a
# limit the VPA's bursts of throttling were taken as the risk of calm hours.
RAISE_LIMIT = 3.0
# ... and only while foresight's requests were exceeded less than this share as often as the
# shadow's: the shadow is not the VPA itself (the VPA weighs CPU samples by the request), and
# a raised risk takes an hour or more to show in the counts. Measured on the shared traces
# (bench.vertical): 0.8, 0.85, 0.9, 0.95 and 1 gave 17, 17, 19, 19 and 18 of 21 CPU wins.
RAISE_BELOW = 0.9
# An hour is "after a burst" when usage rose above the histogram target (the VPA's request)
# within this many hours before it; the margin of each hour is calibrated on the ratios of
# hours of its own kind. Bursts come in clusters on the shared traces (crane 4's last day,
# the NAB EC2 series' spike days), so the pooled margin, one for calm and bursty hours
# alike, is too wide in the calm ones and too narrow after a burst. Measured on the shared
# traces (bench.vertical): 3, 4, 6, 8, 10 and 12 hours gave 16, 19, 20, 21, 21 and 20 of 21
# CPU wins (with CLASS_EXCEEDANCES).
BURST_HOURS = 8.0
# ... but only while the samples of that kind would exceed its target this many times at the
# unadjusted risk: a margin at a risk of 0.3 % needs thousands of samples, and a kind that
# has not had them keeps the pooled margin. A risk cut (MAX_RISK_CUT) then calibrates on the
# same set, so a cut target may rest on a quarter as many. Samples, not independent bursts,
# are counted (forecast.conformal's bands count those, for targets that share one peak): a
# kind sampled every minute splits off sooner than one sampled every five. Measured on the
# shared traces (bench.vertical, with BURST_HOURS): 12, 15, 20 and 30 gave 20, 21, 21 and
# 21 of 21 CPU wins; none (any kind with a day of samples) lost the NAB EC2 series that
# throttles 0.4 %, and counting at the cut risk lost bitbrains CPU (20).
CLASS_EXCEEDANCES = 20.0


class _Record(NamedTuple):
    """What an hourly record kept to judge the samples that came after it."""

    made: float
    histogram_target: float
    forecasts: FloatArray
    calibrated: float  # NaN without a calibrated target
    plain: float  # the calibrated target at the unadjusted risk, or NaN
    after_burst: bool


@dataclass(frozen=True)
class Calibration:
    """The calibrated CPU target now, and whether its record beats the histogram target's.

    ``beats``: over the last :data:`RECORD_DAYS` of the calibration days, the calibrated
    targets made every hour left no more mean slack on the usage that followed them than the
    histogram targets of the same hours (their throttling is matched by the risk). False
    without such a record. ``plain``: the target at the unadjusted risk, on which later
    records measure the excess that cuts it.
    """

    target: float
    beats: bool
    plain: float


class ContainerSizer:
    """Sizes one resource (``cpu`` or ``memory``) of one container."""

    def __init__(self, resource: str, settings: VerticalSettings, first_bucket: float) -> None:
        self.resource = resource
        self.settings = settings
        self.histogram = DecayingHistogram(settings.half_life_hours * HOUR, first_bucket)
        self._recent: deque[tuple[float, float]] = deque()
        self._calibrate = resource == "cpu" and settings.cpu_calibration_days > 0
        self._keep = max(
            settings.cpu_recent_hours * HOUR,
            settings.memory_peak_days * DAY,
            # yesterday's hour and the hours before it, for cpu_forecasts (also longer than
            # the BURST_HOURS that tell a record's kind)
            DAY + settings.cpu_recent_hours * HOUR,
            # and the same hours on each calibration day, for its daily shape
            (settings.cpu_calibration_days * DAY + settings.cpu_recent_hours * HOUR)
            if self._calibrate
            else 0.0,
        )
        self._oom_used: float | None = None
        self._first_seen: float | None = None
        # The request the VPA would hold on the same usage, and per hour of settled samples
        # since the first decision: [hour start, samples, the shadow's request exceeded, the
        # request of the last decision exceeded]; with their sums over the calibration days.
        self._shadow = ShadowVpa(self.histogram, settings) if self._calibrate else None
        self._decided: float | None = None
        self._tally: deque[list[float]] = deque()
        self._tallied = 0
        self._shadow_exceeded = 0
        self._own_exceeded = 0
        # Hourly: what each later sample is judged on.
        self._forecasts: deque[_Record] = deque()
        # The calibration made with the last record: what decisions apply until the next.
        self._hourly: Calibration | None = None
        # The forecasts of the last record and the state they were made from, which the
        # record and its calibration both read.
        self._candidates_memo: tuple[tuple[float, float, int], FloatArray | None] | None = None

    def observe(self, at: float, used: float) -> None:
        """Usage sampled at ``at``."""
        if self._first_seen is None:
            self._first_seen = at
        if self._record_due(at):
            self._forecast(at, *self._arrays())
        settled = at >= self._first_seen + SETTLING_DAYS * DAY
        if self._shadow is not None and self._decided is not None and settled:
            held = self._shadow.step(at)
            if held is not None:
                self._count(at, used > held, used > self._decided)
        self._recent.append((at, used))
        while self._recent and self._recent[0][0] < at - self._keep:
            self._recent.popleft()
        self.histogram.add(used, at)
        if self._shadow is not None:
            self._shadow.saw(at)

    def _count(self, at: float, shadow: bool, own: bool) -> None:
        hour = at - at % HOUR
        if not self._tally or self._tally[-1][0] != hour:
            self._tally.append([hour, 0, 0, 0])
        counts = self._tally[-1]
        counts[1] += 1
        counts[2] += shadow
        counts[3] += own
        self._tallied += 1
        self._shadow_exceeded += shadow
        self._own_exceeded += own
        self._forget(at)

    def _forget(self, at: float) -> None:
        # Hours wholly before the calibration days leave the sums.
        since = at - self.settings.cpu_calibration_days * DAY
        while self._tally and self._tally[0][0] + HOUR <= since:
            _, n, gone, spent = self._tally.popleft()
            self._tallied -= int(n)
            self._shadow_exceeded -= int(gone)
            self._own_exceeded -= int(spent)

    def _risk(self, at: float, made: FloatArray, used: FloatArray, reference: FloatArray) -> float:
        # How often the VPA rule would have been exceeded: its histogram targets on the
        # settled days (all of them before any), raised toward the shadow VPA's own rate while
        # foresight's requests were exceeded less often than the shadow's.
        settled = made >= (self._first_seen or 0.0) + SETTLING_DAYS * DAY
        judged = settled if settled.any() else np.ones(len(made), dtype=bool)
        risk = float(np.mean(used[judged] > reference[judged]))
        self._forget(at)
        if self._tallied and self._own_exceeded < RAISE_BELOW * self._shadow_exceeded:
            shadow = self._shadow_exceeded / self._tallied
            risk = max(risk, min(shadow, RAISE_LIMIT * risk))
        return risk

    def _arrays(self) -> tuple[FloatArray, FloatArray]:
        times = np.fromiter((t for t, _ in self._recent), np.float64, len(self._recent))
        usage = np.fromiter((u for _, u in self._recent), np.float64, len(self._recent))
        return times, usage

    def _candidates(self, times: FloatArray, usage: FloatArray, at: float) -> FloatArray | None:
        key = (at, float(times[-1]) if len(times) else -math.inf, len(times))
        if self._candidates_memo is None or self._candidates_memo[0] != key:
            level = self.histogram.percentile(self.settings.target_percentile)
            forecasts = cpu_forecasts(times, usage, at, level, self.settings)
            # A zero forecast has no ratio; the smallest bucket stands for "nothing".
            floored = None if forecasts is None else np.maximum(forecasts, self.histogram.first)
            self._candidates_memo = (key, floored)
        return self._candidates_memo[1]

    def _record_due(self, at: float) -> bool:
        return self._calibrate and (not self._forecasts or at - self._forecasts[-1].made >= HOUR)

    def _forecast(self, at: float, times: FloatArray, usage: FloatArray) -> None:
        forecasts = self._candidates(times, usage, at)
        if forecasts is None:
            self._hourly = None
            return
        calibrated = self._hourly = self._calibrate_now(times, usage, at)
        target = plain = math.nan
        if calibrated is not None:
            target, plain = calibrated.target, calibrated.plain
        reference = self._histogram_target()
        after_burst = _after_burst(times, usage, at, reference)
        self._forecasts.append(_Record(at, reference, forecasts, target, plain, after_burst))
        since = at - self.settings.cpu_calibration_days * DAY
        # The oldest set stays while it judges samples of the window.
        while len(self._forecasts) > 1 and self._forecasts[1].made <= since:
            self._forecasts.popleft()

    def _histogram_target(self) -> float:
        return self.histogram.percentile(self.settings.target_percentile) * self.settings.margin

    def _calibrate_now(self, times: FloatArray, usage: FloatArray, at: float) -> Calibration | None:
        forecasts = self._candidates(times, usage, at)
        if forecasts is None or not self._forecasts:
            return None
        made = np.fromiter((f.made for f in self._forecasts), np.float64, len(self._forecasts))
        since = max(made[0], at - self.settings.cpu_calibration_days * DAY)
        lo = int(np.searchsorted(times, since, side="left"))
        hi = int(np.searchsorted(times, at, side="right"))
        seen, used = times[lo:hi], usage[lo:hi]
        if len(seen) == 0:
            return None
        which = np.searchsorted(made, seen, side="right") - 1
        then = np.stack([f.forecasts for f in self._forecasts])[which]
        reference = np.fromiter((f.histogram_target for f in self._forecasts), np.float64)[which]
        risk = self.settings.cpu_throttle_target
        if risk is None:
            risk = self._risk(at, made[which], used, reference)
        ratios = used[:, None] / then
        # The hours of this one's kind, when they are enough to calibrate on (Mondrian
        # conformal prediction, with "after a burst" and "calm" as the two classes).
        kinds = np.fromiter((f.after_burst for f in self._forecasts), bool)[which]
        same_kind = kinds == _after_burst(times, usage, at, self._histogram_target())
        if np.count_nonzero(same_kind) * risk >= CLASS_EXCEEDANCES:
            ratios = ratios[same_kind]
        plain = calibrated_target(forecasts, ratios, risk)
        if plain is None:
            return None
        best = plain
        plains = np.fromiter((f.plain for f in self._forecasts), np.float64)[which]
        made_then = np.isfinite(plains)
        if risk > 0 and made_then.any():
            exceeded = float(np.mean(used[made_then] > plains[made_then]))
            lately = made_then & (seen >= at - EXCESS_DAYS * DAY)
            if lately.any():
                exceeded = max(exceeded, float(np.mean(used[lately] > plains[lately])))
            cut = min(MAX_RISK_CUT, exceeded / risk)
            if cut > 1:
                best = calibrated_target(forecasts, ratios, risk / cut) or plain
        record = np.fromiter((f.calibrated for f in self._forecasts), np.float64)[which]
        judged = np.isfinite(record) & (reference > 0) & (seen >= at - RECORD_DAYS * DAY)
        # Slack as the backtest scores it: a sample above its target used all of it, and
        # shows no more than zero slack however far above it was.
        beats = bool(judged.any()) and bool(
            np.mean(np.minimum(1.0, used[judged] / reference[judged]))
            <= np.mean(np.minimum(1.0, used[judged] / record[judged]))
        )
        return Calibration(best[0], beats, plain[0])

    def oom(self, used: float) -> None:
        """An OOM kill with ``used`` in use (the limit, usually)."""
        self._oom_used = max(used, self._oom_used or 0.0)

    @property
    def samples(self) -> int:
        """Samples in the recent window."""
        return len(self._recent)

    def decide(
        self,
        at: float,
        current: float,
        min_allowed: float = 0.0,
        max_allowed: float = math.inf,
    ) -> VerticalDecision:
        """The request for ``current``; consumes a pending OOM kill."""
        times, usage = self._arrays()
        need = forecast_need(times, usage, at, self.resource, self.settings)
        if self._record_due(at):
            self._forecast(at, times, usage)
        calibration = self._hourly if self._calibrate else None
        calibrated = None if calibration is None else calibration.target
        # The VPA's own target until the calibrated one has shown it leaves less slack.
        fallback = calibration is None or not calibration.beats
        if self._calibrate and self.settings.cpu_fallback and fallback:
            need = calibrated = None
        decision = recommend_request(
            self.histogram,
            current,
            self.settings,
            forecast=need,
            oom_used=self._oom_used,
            min_allowed=min_allowed,
            max_allowed=max_allowed,
            calibrated=calibrated,
        )
        self._oom_used = None
        if math.isfinite(decision.request) and decision.request > 0:
            self._decided = decision.request
        return decision


def _after_burst(times: FloatArray, usage: FloatArray, at: float, target: float) -> bool:
    """Whether usage rose above ``target`` within :data:`BURST_HOURS` before ``at``."""
    # Against the histogram target at ``at`` rather than each sample's own: the kind of a
    # record and the kind now are then read alike, from what the sizer holds at the time.
    lo = int(np.searchsorted(times, at - BURST_HOURS * HOUR, side="left"))
    return lo < len(usage) and float(usage[lo:].max()) > target
