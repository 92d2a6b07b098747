"""What goes wrong in a chaos run, and when: a pure function of the seed and the length.

Times are virtual seconds after the start. The first ``WARMUP`` seconds are quiet (the
service starts and lists the cluster); so is everything after ``duration`` (the settle
phase, in which the outbox drains and the account is closed). Kills never fall in a
full-disk window: on a full disk the store is allowed to hold samples in memory, and a kill
then loses them by design, which is not what the sample line measures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from bench.chaos_receiver import Mode
from simulator.faults import FaultSpec

__all__ = ["CHAOS_RULES", "Plan", "RuleShape", "Window", "make_plan"]

WARMUP = 600.0
MINUTE = 60.0
HOUR = 3600.0


@dataclass(frozen=True)
class RuleShape:
    """A rule that is active while ``time() % period < window``: its episodes are known."""

    name: str
    period: float
    window: float
    for_s: float

    def expr(self) -> str:
        return f"vector(time() % {self.period:g}) < {self.window:g}"


# Episodes short and long, with `for` clocks short and long, so kills land in every state.
CHAOS_RULES = (
    RuleShape("ChaosShort", 15 * MINUTE, 9 * MINUTE, 1 * MINUTE),
    RuleShape("ChaosMedium", 40 * MINUTE, 25 * MINUTE, 5 * MINUTE),
    RuleShape("ChaosLong", 3 * HOUR, 100 * MINUTE, 15 * MINUTE),
)


@dataclass(frozen=True)
class Window:
    """Something that holds from ``start`` for ``duration`` seconds."""

    start: float
    duration: float
    what: str

    @property
    def end(self) -> float:
        return self.start + self.duration

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass
class Plan:
    """Every fault of one run."""

    seed: int
    duration: float
    kills: list[float] = field(default_factory=list)
    receiver: list[tuple[Window, Mode]] = field(default_factory=list)
    faults: list[FaultSpec] = field(default_factory=list)
    disk_full: list[Window] = field(default_factory=list)
    stale: list[Window] = field(default_factory=list)  # every kubelet scrape fails

    def describe(self) -> dict[str, Any]:
        """The plan as JSON-ready counts and windows."""
        return {
            "seed": self.seed,
            "duration_s": self.duration,
            "kills": len(self.kills),
            "receiver_windows": [
                {"mode": m, "start_s": w.start, "duration_s": w.duration} for w, m in self.receiver
            ],
            "simulator_faults": [
                f.model_dump(mode="json", exclude_defaults=True) for f in self.faults
            ],
            "disk_full": [{"start_s": w.start, "duration_s": w.duration} for w in self.disk_full],
            "stale_data": [{"start_s": w.start, "duration_s": w.duration} for w in self.stale],
        }


def _slots(rng: random.Random, n: int, lo: float, hi: float, gap: float) -> list[float]:
    """``n`` sorted times in ``[lo, hi)``, at least ``gap`` apart (fewer if they do not fit)."""
    n = min(n, max(1, int((hi - lo) // gap)))
    # n points spaced by `gap`, then the slack spread at random between them.
    slack = (hi - lo) - n * gap
    cuts = sorted(rng.uniform(0, slack) for _ in range(n))
    return [lo + c + i * gap for i, c in enumerate(cuts)]


def make_plan(
    seed: int,
    duration: float,
    kills: int,
    nodes: tuple[str, ...],
    full: bool = True,
    disk: bool = True,
) -> Plan:
    """The faults of a run of ``duration`` virtual seconds.

    ``full=False`` keeps only the kills and one receiver outage (the test suite's short run).
    """
    rng = random.Random(seed)
    plan = Plan(seed, duration)
    end = duration
    span = end - WARMUP
    # The receiver: an outage (port closed), then 5xx, 429 and hanging requests.
    modes: list[Mode] = (
        ["down"]
        if not full
        else ["down", "5xx", "429", "timeout"] * max(1, round(duration / (12 * HOUR)))
    )
    length = min(45 * MINUTE, span / (2 * len(modes)))
    for start, mode in zip(
        _slots(rng, len(modes), WARMUP, end - length, length * 1.5), modes, strict=False
    ):
        plan.receiver.append((Window(start, rng.uniform(0.6, 1.0) * length, mode), mode))
    if full:
        _simulator_faults(plan, rng, nodes, span)
        if disk:
            d = min(30 * MINUTE, span / 8)
            start = rng.uniform(WARMUP + span * 0.3, WARMUP + span * 0.6)
            plan.disk_full.append(Window(start, d, "disk-full"))
    # Kills: anywhere else, a few minutes apart at least.
    gap = min(20 * MINUTE, span / (kills * 2)) if kills else span
    candidates = _slots(rng, kills * 2, WARMUP, end, gap / 2)
    rng.shuffle(candidates)
    margin = 10 * MINUTE
    free = [
        t
        for t in candidates
        if not any(w.start - margin <= t < w.end + margin for w in plan.disk_full)
    ]
    plan.kills = sorted(free[:kills])
    return plan


def _simulator_faults(plan: Plan, rng: random.Random, nodes: tuple[str, ...], span: float) -> None:
    """API errors, 429s and hung requests, watch drops, a node failure, stale kubelets."""
    rounds = max(1, round(plan.duration / (12 * HOUR)))
    length = min(30 * MINUTE, span / 10)
    kinds: list[dict[str, Any]] = []
    for _ in range(rounds):
        kinds += [
            {"type": "api-error", "code": 500, "probability": 0.3},
            {"type": "api-error", "code": 503, "probability": 0.3},
            {"type": "api-error", "code": 429, "retryAfter": 5, "probability": 0.3},
            # Watches are dropped by their own fault; a hung request is a read or a write.
            {
                "type": "api-timeout",
                "probability": 0.1,
                "verbs": ["get", "list", "update", "patch", "create"],
            },
        ]
    for start, kind in zip(
        _slots(rng, len(kinds), WARMUP, plan.duration - length, length), kinds, strict=False
    ):
        plan.faults.append(
            FaultSpec.model_validate(
                {**kind, "at": start, "duration": rng.uniform(0.5, 1) * length}
            )
        )
    for t in _slots(rng, 3 * rounds, WARMUP, plan.duration, length / 3):
        plan.faults.append(FaultSpec(type="watch-disconnect", at=t))
    # One node fails for 40 minutes (its pods are evicted and rescheduled).
    down = rng.uniform(WARMUP + span * 0.1, WARMUP + span * 0.4)
    plan.faults.append(
        FaultSpec(type="node-down", node=rng.choice(nodes), at=down, duration=40 * MINUTE)
    )
    # Every kubelet answers 500 for 20 minutes: the load data goes stale.
    stale = rng.uniform(WARMUP + span * 0.6, WARMUP + span * 0.9)
    plan.faults.append(FaultSpec(type="kubelet-error", at=stale, duration=20 * MINUTE))
    plan.stale.append(Window(stale, 20 * MINUTE, "stale"))
