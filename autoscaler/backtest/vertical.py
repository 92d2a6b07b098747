"""``backtest --vertical``: request sizing on a CPU or memory usage trace.

The trace is one container's usage. The first ``warmup`` (7 days, or half the trace) is only
observed; from then on each policy sets the request and is scored on every sample:

- slack = mean of the share of the request left unused, max(0, request − used) / request.
  The request is the limit, so a sample above it uses all of it: its slack is 0, and what it
  lacked is counted as throttling (CPU) or an OOM kill (memory), never as negative slack that
  would make a request below usage look thrifty;
- throttled = % of samples with CPU usage above the request;
- OOM events = samples with memory usage above the limit. The limit equals the request, as
  for Guaranteed pods. An OOM-killed container restarts with the same request; every policy
  is told of the kill and may set a new request from the next sample on;
- resizes = changes of the request after the first one.

Policies:

- ``foresight``: :func:`autoscaler.policy.vertical.recommend_request` fed with a forecast of
  the usage it must cover until the next decision (see :class:`ForesightVertical`), decided
  every ``controller.resize_every_seconds`` (5 minutes by default), as the live controller
  decides, and after every OOM kill;
- ``vpa``: the VPA recommender and updater with their defaults (see :class:`VpaReference`),
  evaluated at every sample, as the updater loop runs every minute;
- ``krr``: KRR's simple strategy (CPU P95, memory max + 15 % over the last 14 days), applied
  hourly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from autoscaler.backtest.trace import load_trace
from autoscaler.controller.settings import ControllerSettings
from autoscaler.policy.settings import VerticalSettings
from autoscaler.policy.sizer import ContainerSizer
from autoscaler.policy.vertical import (
    DecayingHistogram,
    oom_bump,
)
from autoscaler.policy.vpa import QUICK_OOM, confidence_days, recommendation, updater_evicts

__all__ = [
    "ForesightVertical",
    "KrrReference",
    "VerticalInputs",
    "VerticalPolicy",
    "VerticalResult",
    "VerticalScore",
    "VpaReference",
    "format_vertical",
    "replay_vertical",
    "run_vertical",
    "vertical_inputs",
]

FloatArray = NDArray[np.float64]

DAY = 86_400.0
HOUR = 3_600.0
KRR_DECISION_SECONDS = HOUR
# How often the live controller decides a container's size, unless configured otherwise.
RESIZE_EVERY_SECONDS = float(ControllerSettings.model_fields["resize_every_seconds"].default)
KRR_HISTORY = 14 * DAY

# The VPA recommender's memory aggregation window (aggregations config); its other defaults
# and the updater's rule are in autoscaler.policy.vpa.
VPA_MEMORY_AGGREGATION_INTERVAL = DAY


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


class VerticalPolicy(Protocol):
    """Sizes one container resource from the usage it has seen so far."""

    name: str
    decision_seconds: float  # 0: may change the request at every sample

    def observe(self, at: float, used: float, request: float | None) -> None:
        """A usage sample (``request`` is None during the warm-up)."""
        ...

    def oom(self, at: float, used: float, request: float) -> None:
        """The container was OOM-killed at ``at`` with usage ``used`` over ``request``."""
        ...

    def decide(self, at: float, request: float | None, after_oom: bool) -> float:
        """The request from ``at`` on (``request`` is the current one, None at the start)."""
        ...


def replay_vertical(
    times: FloatArray, usage: FloatArray, first: int, resource: str, policy: VerticalPolicy
) -> VerticalScore:
    """Replay ``usage`` through ``policy``; samples before ``first`` are only observed.

    At each scored sample, in order: the policy may set the request (at its decision times,
    or after an OOM kill); the sample is scored against that request; then the policy sees
    the sample (and the kill, if there was one). A policy never sees a sample before it has
    set the request that sample is scored against.
    """
    for k in range(first):
        policy.observe(float(times[k]), float(usage[k]), None)
    request: float | None = None
    next_decision = -math.inf
    after_oom = False
    slack = 0.0
    throttled = ooms = resizes = 0
    for k in range(first, len(times)):
        t, used = float(times[k]), float(usage[k])
        due = t >= next_decision
        if request is None or after_oom or due:
            new = policy.decide(t, request, after_oom)
            if request is not None and new != request:
                resizes += 1
            request = new
            if due:
                next_decision = t + policy.decision_seconds
            after_oom = False
        slack += max(0.0, request - used) / request if request > 0 else 0.0
        if used > request:
            if resource == "cpu":
                throttled += 1
            else:
                ooms += 1
                after_oom = True
        policy.observe(t, used, request)
        if after_oom:
            policy.oom(t, used, request)
    scored = len(times) - first
    return VerticalScore(
        policy=policy.name,
        slack_pct=100.0 * slack / scored if scored else 0.0,
        throttled_pct=100.0 * throttled / scored if scored else 0.0,
        oom_events=ooms,
        resizes=resizes,
    )


class VpaReference:
    """The VPA recommender (default flags) and updater, for one container resource.

    Recommender: a decaying histogram (half-life 24 h) per resource. CPU samples are weighted
    by the container's CPU request at the time (minimum 0.1 core in the recommender; the
    trace's unit is unknown, so the floor is a tiny fraction of the request). Memory keeps one
    sample per 24 h aggregation window, the window's peak, replaced when a larger value
    arrives in the same window; an OOM kill adds max(used + 100 MiB, used × 1.2) as a peak of
    its window, where used = max(request, the window's usage peak). Target = P90 × 1.15,
    lower bound = P50 × 1.15 × (1 + 0.001/c)^-2, upper bound = P95 × 1.15 × (1 + 1/c), with
    c the confidence in days.

    Updater: the pod is given the target when its request is outside the bounds; when inside,
    only if the pod has lived 12 h and the target differs by at least 10 %, or when the
    container was OOM-killed within 10 minutes of its start. An eviction restarts the pod.

    Left out on purpose: the 25 millicore / 250 MiB per-pod minimum (it would only add slack
    to the reference on small containers).
    """

    name = "vpa"
    decision_seconds = 0.0

    def __init__(self, resource: str, settings: VerticalSettings, first_bucket: float) -> None:
        self.resource = resource
        self.s = settings
        self.histogram = DecayingHistogram(settings.half_life_hours * HOUR, first_bucket)
        self._first: float | None = None
        self._last: float | None = None
        self._window_end: float | None = None
        self._memory_peak = 0.0
        self._oom_peak = 0.0
        self._weighted_by_request = False
        self._pod_started = -math.inf
        self._container_started = -math.inf
        self._quick_oom = False

    def _add_memory_peak(self, value: float, at: float, is_oom: bool) -> None:
        interval = VPA_MEMORY_AGGREGATION_INTERVAL
        if self._window_end is None:
            self._window_end = at
        if at < self._window_end:
            old = max(self._memory_peak, self._oom_peak)
            if old == 0 or value <= old:
                return
            self.histogram.subtract(old, self._window_end)
        else:
            behind = at - self._window_end
            self._window_end += (behind // interval) * interval + interval
            self._memory_peak = self._oom_peak = 0.0
        self.histogram.add(value, self._window_end)
        if is_oom:
            self._oom_peak = value
        else:
            self._memory_peak = value

    def observe(self, at: float, used: float, request: float | None) -> None:
        if self._first is None:
            self._first = at
        self._last = at
        if self.resource == "cpu":
            # Before the first recommendation the request is unknown: unit weights, rescaled
            # to the first request once it is set (percentiles do not change).
            weight = 1.0 if request is None else max(request, 1e-9)
            self.histogram.add(used, at, weight)
        else:
            self._add_memory_peak(used, at, is_oom=False)

    def oom(self, at: float, used: float, request: float) -> None:
        if self.resource != "memory":
            return
        base = max(request, self._memory_peak)
        self._add_memory_peak(oom_bump(base, self.s), at, is_oom=True)
        self._quick_oom = at - self._container_started < QUICK_OOM
        self._container_started = at

    def bounds(self) -> tuple[float, float, float]:
        """(lower, target, upper) of the recommender now."""
        return recommendation(self.histogram, self.s, confidence_days(self._first, self._last))

    def decide(self, at: float, request: float | None, after_oom: bool) -> float:
        bounds = self.bounds()
        target = bounds[1]
        if request is None:
            if self.resource == "cpu" and not self._weighted_by_request:
                self.histogram.scale(max(target, 1e-9))
                self._weighted_by_request = True
            self._pod_started = self._container_started = at
            return target
        quick, self._quick_oom = self._quick_oom, False
        if not updater_evicts(request, bounds, at - self._pod_started, quick):
            return request
        self._pod_started = self._container_started = at
        return target


class KrrReference:
    """KRR's simple strategy: CPU P95, memory max × 1.15 of the last 14 days, hourly."""

    name = "krr"
    decision_seconds = KRR_DECISION_SECONDS

    def __init__(self, resource: str) -> None:
        self.resource = resource
        self._times: list[float] = []
        self._usage: list[float] = []

    def observe(self, at: float, used: float, request: float | None) -> None:
        self._times.append(at)
        self._usage.append(used)

    def oom(self, at: float, used: float, request: float) -> None:
        return None  # the next decision sees the sample that was killed

    def decide(self, at: float, request: float | None, after_oom: bool) -> float:
        lo = int(np.searchsorted(np.asarray(self._times), at - KRR_HISTORY))
        recent = np.asarray(self._usage[lo:])
        if len(recent) == 0:
            return request or 0.0
        if self.resource == "cpu":
            return float(np.percentile(recent, 95))
        return float(recent.max()) * 1.15


class ForesightVertical:
    """foresight's vertical policy in the backtest: the live controller's :class:`ContainerSizer`.

    Every ``decision_seconds`` (the controller's ``resize_every_seconds``) and after an OOM
    kill the sizer decides on the usage seen so far, as the controller does each time.
    """

    name = "foresight"

    def __init__(
        self,
        resource: str,
        settings: VerticalSettings,
        first_bucket: float,
        decision_seconds: float = RESIZE_EVERY_SECONDS,
    ) -> None:
        self.sizer = ContainerSizer(resource, settings, first_bucket)
        self.decision_seconds = decision_seconds

    def observe(self, at: float, used: float, request: float | None) -> None:
        self.sizer.observe(at, used)

    def oom(self, at: float, used: float, request: float) -> None:
        self.sizer.oom(used)

    def decide(self, at: float, request: float | None, after_oom: bool) -> float:
        decision = self.sizer.decide(at, request or 0.0)
        return decision.request if math.isfinite(decision.request) else (request or 0.0)


def _resource(name: str) -> str:
    return "memory" if "mem" in name.lower() else "cpu"


PolicyFactory = Callable[[str, VerticalSettings, float], VerticalPolicy]

# The reference policies, replayed beside foresight.
POLICIES: dict[str, PolicyFactory] = {
    "vpa": VpaReference,
    "krr": lambda r, s, b: KrrReference(r),
}


@dataclass(frozen=True)
class VerticalInputs:
    """A usage trace as the replay takes it: samples, where scoring starts, the resource."""

    name: str
    resource: str
    times: FloatArray
    usage: FloatArray
    first: int  # the first scored sample; earlier ones are the warm-up
    first_bucket: float  # the histograms' smallest bucket


def vertical_inputs(path: Path, skip_days: float = 0.0) -> VerticalInputs:
    """Load a usage trace (KB become bytes) with a warm-up of 7 days or half the trace.

    ``skip_days`` drops the trace's first days, so that the warm-up and the scored window
    start that much later: the same usage, judged from another starting point.
    """
    trace = load_trace(path)
    kept = int(np.searchsorted(trace.times, trace.times[0] + skip_days * DAY))
    if kept >= len(trace.times) - 1:
        raise ValueError(f"{path}: skipping {skip_days:g} days leaves no usage to replay")
    times = trace.times[kept:]
    usage = np.maximum(trace.values[kept:], 0.0)
    if trace.name.lower().endswith("_kb"):
        usage = usage * 1024  # the OOM bump is in bytes
    warmup = min(7 * DAY, (times[-1] - times[0]) / 2)
    first = int(np.searchsorted(times, times[0] + warmup))
    positive = usage[usage > 0]
    # Histogram buckets start well below the smallest usage so that they resolve it.
    first_bucket = float(positive.min()) / 2 if len(positive) else 1.0
    return VerticalInputs(trace.name, _resource(trace.name), times, usage, first, first_bucket)


def run_vertical(
    path: Path,
    settings: VerticalSettings | None = None,
    decision_seconds: float = RESIZE_EVERY_SECONDS,
    skip_days: float = 0.0,
) -> VerticalResult:
    """Replay a usage trace through ``foresight`` (deciding every ``decision_seconds``),
    ``vpa`` and ``krr`` (without its first ``skip_days``)."""
    s = settings or VerticalSettings.model_validate({})
    v = vertical_inputs(path, skip_days)
    policies: list[VerticalPolicy] = [
        ForesightVertical(v.resource, s, v.first_bucket, decision_seconds),
        *(factory(v.resource, s, v.first_bucket) for factory in POLICIES.values()),
    ]
    scores = [replay_vertical(v.times, v.usage, v.first, v.resource, p) for p in policies]
    return VerticalResult(v.name, v.resource, scores)


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
