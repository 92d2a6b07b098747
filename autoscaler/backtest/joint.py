"""``backtest --joint``: replicas and pod size together, on a trace of a workload's total load.

The world is the replica backtest's (``autoscaler.backtest.world``), with pods that can be
resized in place: a pod of size s serves s × the capacity per replica and costs s times as
much. Every policy scales between 2 replicas and ``--peak-replicas`` (the count the trace's
99th percentile needs at size 1), starts with pods of size 1, and re-sizes at most every
``controller.resize_every_seconds`` (5 minutes by default), as the controller's vertical
side does:

- ``horizontal``: foresight's replica policy alone; pods keep size 1;
- ``joint``: the same, with :func:`autoscaler.policy.joint.size_scaled_resource` sizing the
  pods, as the controller does for an autoscaler with both sides on one resource;
- ``independent``: the same replica policy, with the pods sized by the vertical policy from
  the usage per pod (what the controller did before the joint decision): the fight.

Figures per policy: violating steps (%), cost relative to ``horizontal`` (pod-size-weighted
replica-seconds), steps at which the replica count changed, resizes, and the ranges of the
replica count and the pod size over the scored steps.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from autoscaler.backtest.foresight import ForesightPolicy
from autoscaler.backtest.observation import Observation, WorkloadInfo
from autoscaler.backtest.scoring import replica_seconds
from autoscaler.backtest.trace import load_trace
from autoscaler.backtest.vertical import RESIZE_EVERY_SECONDS
from autoscaler.backtest.world import Replay, WorldConfig, build_world, replay
from autoscaler.forecast.settings import ForecastSettings
from autoscaler.policy.joint import size_scaled_resource
from autoscaler.policy.settings import HorizontalSettings, VerticalSettings
from autoscaler.policy.sizer import ContainerSizer

__all__ = ["JOINT_POLICIES", "JointResult", "JointScore", "format_joint", "run_joint"]

MIN_REPLICAS = 2
JOINT_POLICIES = ("horizontal", "joint", "independent")


class _Sized(ForesightPolicy):
    """foresight's replica policy whose pods are re-sized by :meth:`size` at the
    controller's cadence."""

    def __init__(
        self,
        info: WorkloadInfo,
        forecast: ForecastSettings,
        horizontal: HorizontalSettings,
        resize_every_seconds: float = RESIZE_EVERY_SECONDS,
    ) -> None:
        super().__init__(info, forecast, horizontal)
        self.vertical = VerticalSettings()
        self.resizes = 0
        self._every = resize_every_seconds
        self._sized_at: float | None = None

    def decide(self, obs: Observation) -> int:
        replicas = super().decide(obs)
        if self._sized_at is None or obs.now - self._sized_at >= self._every:
            self._sized_at = obs.now
            size = self.size(obs, replicas)
            if size != self.pod_size:
                self.pod_size = size
                self.resizes += 1
        return replicas

    def size(self, obs: Observation, replicas: int) -> float:
        """The pod size from now on."""
        return self.pod_size


class _Joint(_Sized):
    def size(self, obs: Observation, replicas: int) -> float:
        assert self.last is not None
        peak = self.forecasts[-1] if self.forecasts else math.nan
        need = max(obs.history.last(), peak if math.isfinite(peak) else 0.0)
        sizing = size_scaled_resource(
            need / self.info.capacity_per_replica,
            self.last,
            self.pod_size,
            self.settings,
            self.vertical.hysteresis,
        )
        return sizing.pod_request


class _Independent(_Sized):
    def __init__(
        self,
        info: WorkloadInfo,
        forecast: ForecastSettings,
        horizontal: HorizontalSettings,
        resize_every_seconds: float = RESIZE_EVERY_SECONDS,
    ) -> None:
        super().__init__(info, forecast, horizontal, resize_every_seconds)
        self.sizer = ContainerSizer("cpu", self.vertical, first_bucket=1e-3)

    def decide(self, obs: Observation) -> int:
        # Usage per pod, in units of the capacity per replica: what a pod's cAdvisor shows.
        serving = max(obs.ready, 1) * self.pod_size * self.info.capacity_per_replica
        used = min(obs.history.last(), serving) / max(obs.ready, 1)
        self.sizer.observe(obs.now, used / self.info.capacity_per_replica)
        return super().decide(obs)

    def size(self, obs: Observation, replicas: int) -> float:
        decision = self.sizer.decide(obs.now, self.pod_size)
        return decision.request if decision.request > 0 else self.pod_size


_CLASSES: dict[str, type[_Sized]] = {
    "horizontal": _Sized,
    "joint": _Joint,
    "independent": _Independent,
}


@dataclass(frozen=True)
class JointScore:
    """Figures of one policy on one trace."""

    policy: str
    violation_pct: float
    cost_vs_horizontal: float
    actions: int
    resizes: int
    replicas_min: int
    replicas_max: int
    pod_size_min: float
    pod_size_max: float


@dataclass(frozen=True)
class JointResult:
    """Every policy's figures on one trace."""

    trace: str
    scores: list[JointScore]

    def as_dict(self) -> dict[str, object]:
        """Plain JSON values."""
        return {"trace": self.trace, "scores": [asdict(s) for s in self.scores]}


def _violation_pct(run: Replay) -> float:
    capacity = run.ready * run.capacity * run.sizes()
    return 100.0 * float(np.count_nonzero(run.demand > capacity)) / len(run.demand)


def run_joint(
    path: Path,
    config: WorldConfig,
    forecast: ForecastSettings | None = None,
    resize_every_seconds: float = RESIZE_EVERY_SECONDS,
) -> JointResult:
    """Replay one trace through ``horizontal``, ``joint`` and ``independent``, pods re-sized
    every ``resize_every_seconds`` (the controller's ``resize_every_seconds``)."""
    world = build_world(load_trace(path), config)
    settings = HorizontalSettings(
        min_replicas=MIN_REPLICAS,
        max_replicas=max(MIN_REPLICAS, config.peak_replicas),
        target_utilisation=1.0,
    )
    runs: dict[str, tuple[Replay, _Sized]] = {}
    for name, cls in _CLASSES.items():
        policy = cls(world.info, forecast or ForecastSettings(), settings, resize_every_seconds)
        runs[name] = (replay(world, policy), policy)
    base = replica_seconds(runs["horizontal"][0])
    scores = []
    for name, (run, policy) in runs.items():
        previous = np.concatenate([[run.initial], run.replicas[:-1]])
        sizes = run.sizes()
        scores.append(
            JointScore(
                policy=name,
                violation_pct=_violation_pct(run),
                cost_vs_horizontal=replica_seconds(run) / base if base > 0 else math.nan,
                actions=int(np.count_nonzero(run.replicas != previous)),
                resizes=policy.resizes,
                replicas_min=int(run.replicas.min()),
                replicas_max=int(run.replicas.max()),
                pod_size_min=float(sizes.min()),
                pod_size_max=float(sizes.max()),
            )
        )
    return JointResult(world.name, scores)


def format_joint(results: list[JointResult]) -> str:
    """A table per trace."""
    head = (
        f"{'trace':<34} {'policy':<12} {'viol%':>6} {'cost':>6} {'actions':>7} "
        f"{'resizes':>7} {'replicas':>9} {'pod size':>11}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        for s in r.scores:
            lines.append(
                f"{r.trace[:34]:<34} {s.policy:<12} {s.violation_pct:>6.2f} "
                f"{s.cost_vs_horizontal:>6.3f} {s.actions:>7d} {s.resizes:>7d} "
                f"{f'{s.replicas_min}-{s.replicas_max}':>9} "
                f"{f'{s.pod_size_min:.2f}-{s.pod_size_max:.2f}':>11}"
            )
    lines.append("cost: pod-size-weighted replica-seconds relative to horizontal")
    return "\n".join(lines) + "\n"
