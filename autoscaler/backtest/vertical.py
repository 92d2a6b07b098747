"""``backtest --vertical``: request sizing on a CPU or memory usage trace.

The trace is one container's usage. The first ``warmup`` (7 days, or half the trace) fills
the histories; then every hour each policy sets a request. Figures over the scored samples:
slack = mean of (request − used) / request, throttled = % of samples with CPU usage above the
request, OOM events = samples with memory usage above the limit (the limit equals the request
here, as for Guaranteed pods; each OOM is followed by a bump), resizes = request changes.

References: ``vpa`` (decaying histogram, P90 × 1.15, resize only when the request leaves
the P50–P95 bounds, OOM fed back as a sample) and ``krr`` (CPU P95, memory max + 15 %, over
the last 14 days, resized whenever the recommendation changes).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from autoscaler.backtest.trace import load_trace
from autoscaler.policy.settings import VerticalSettings
from autoscaler.policy.vertical import DecayingHistogram, oom_bump, recommend_request

__all__ = ["VerticalResult", "VerticalScore", "format_vertical", "run_vertical"]

DAY = 86_400.0
DECISION_SECONDS = 3600.0
KRR_HISTORY = 14 * DAY


@dataclass(frozen=True)
class VerticalScore:
    """Figures of one policy on one usage trace."""

    policy: str
    slack_pct: float
    throttled_pct: float
    oom_events: int
    resizes: int


@dataclass(frozen=True)
class VerticalResult:
    """Every policy's figures on one trace."""

    trace: str
    resource: str
    scores: list[VerticalScore]

    def as_dict(self) -> dict[str, object]:
        """Plain JSON values."""
        return {
            "trace": self.trace,
            "resource": self.resource,
            "scores": [asdict(s) for s in self.scores],
        }


def _resource(name: str) -> str:
    return "memory" if "mem" in name.lower() else "cpu"


def run_vertical(path: Path, settings: VerticalSettings | None = None) -> VerticalResult:
    """Replay a usage trace through ``foresight``, ``vpa`` and ``krr``."""
    s = settings or VerticalSettings.model_validate({})
    trace = load_trace(path)
    times, usage = trace.times, np.maximum(trace.values, 0.0)
    if trace.name.lower().endswith("_kb"):
        usage = usage * 1024  # the OOM bump is in bytes
    resource = _resource(trace.name)
    warmup = min(7 * DAY, (times[-1] - times[0]) / 2)
    first = int(np.searchsorted(times, times[0] + warmup))
    positive = usage[usage > 0]
    floor = float(positive.min()) if len(positive) else 1.0
    scores = [
        _replay(name, times, usage, first, resource, s, floor)
        for name in ("foresight", "vpa", "krr")
    ]
    return VerticalResult(trace.name, resource, scores)


def _replay(
    policy: str,
    times: np.ndarray,
    usage: np.ndarray,
    first: int,
    resource: str,
    s: VerticalSettings,
    floor: float,
) -> VerticalScore:
    histogram = DecayingHistogram(s.half_life_hours * 3600, first_bucket=floor / 2)
    for k in range(first):
        histogram.add(float(usage[k]), float(times[k]))
    request = 0.0
    next_decision = float(times[first])
    slack: list[float] = []
    throttled = ooms = resizes = 0
    oom_used: float | None = None
    for k in range(first, len(times)):
        t, used = float(times[k]), float(usage[k])
        if t >= next_decision or request <= 0:
            new = _decide(policy, histogram, request, times, usage, k, resource, s, oom_used)
            if new != request and request > 0:
                resizes += 1
            request, oom_used = new, None
            next_decision = t + DECISION_SECONDS
        slack.append((request - used) / request if request > 0 else 0.0)
        if used > request:
            if resource == "cpu":
                throttled += 1
            else:
                ooms += 1
                oom_used = used
                bumped = oom_bump(used, s) if policy != "krr" else used * 1.15
                if policy == "vpa":
                    histogram.add(bumped, t)
                request = max(request, bumped)
                resizes += 1
                next_decision = t + DECISION_SECONDS
        histogram.add(used, t)
    scored = len(times) - first
    return VerticalScore(
        policy=policy,
        slack_pct=100.0 * float(np.mean(slack)) if slack else 0.0,
        throttled_pct=100.0 * throttled / scored if scored else 0.0,
        oom_events=ooms,
        resizes=resizes,
    )


def _decide(
    policy: str,
    histogram: DecayingHistogram,
    current: float,
    times: np.ndarray,
    usage: np.ndarray,
    k: int,
    resource: str,
    s: VerticalSettings,
    oom_used: float | None,
) -> float:
    now = float(times[k])
    if policy == "krr":
        lo = int(np.searchsorted(times, now - KRR_HISTORY))
        recent = usage[lo:k]
        if resource == "cpu":
            return float(np.percentile(recent, 95))
        return float(recent.max()) * 1.15
    if policy == "vpa":
        target = histogram.percentile(s.target_percentile) * s.margin
        lower = histogram.percentile(s.lower_percentile) * s.margin
        upper = histogram.percentile(s.upper_percentile) * s.margin
        if current <= 0 or current < lower or current > upper:
            return target
        return current
    # foresight: the daily peak forecast is the same day-long window one day ago (seasonal
    # naive), at the resource's coverage.
    lo = int(np.searchsorted(times, now - DAY))
    day = usage[lo:k]
    if len(day) == 0:
        peak = None
    elif resource == "cpu":
        peak = float(np.quantile(day, s.cpu_peak_percentile))
    else:
        peak = float(day.max()) * s.memory_peak_margin
    decision = recommend_request(histogram, current, s, daily_peak=peak, oom_used=oom_used)
    return decision.request if math.isfinite(decision.request) else current


def format_vertical(results: list[VerticalResult]) -> str:
    """A table per trace."""
    head = (
        f"{'trace':<34} {'res':<6} {'policy':<10} {'slack%':>7} {'throttled%':>10} "
        f"{'ooms':>5} {'resizes':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        for sc in r.scores:
            lines.append(
                f"{r.trace[:34]:<34} {r.resource:<6} {sc.policy:<10} {sc.slack_pct:>7.2f} "
                f"{sc.throttled_pct:>10.2f} {sc.oom_events:>5d} {sc.resizes:>7d}"
            )
    return "\n".join(lines) + "\n"
