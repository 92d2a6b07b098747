"""Horizontal and vertical on one resource: the joint loop settles and does not ratchet."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.policy.horizontal import LoadSignal, ReplicaState, decide_replicas
from autoscaler.policy.joint import size_scaled_resource
from autoscaler.policy.settings import HorizontalSettings
from autoscaler.policy.vertical import VerticalReason

STEP = 15.0
DAY_STEPS = int(86_400 / STEP)
HYSTERESIS = 0.1


@dataclass
class Loop:
    """One workload under the joint policy: replicas and per-pod request, cycle by cycle."""

    settings: HorizontalSettings
    replicas: int
    request: float
    state: ReplicaState | None = None
    replica_changes: int = 0
    resizes: int = 0

    def cycle(self, need: float, now: float) -> None:
        if self.state is None:
            self.state = ReplicaState(self.replicas, self.request, ((now, self.replicas),))
        state = ReplicaState(self.replicas, self.request, self.state.recommendations)
        decision = decide_replicas(LoadSignal(need, now, need), state, self.settings, now)
        self.state = decision.state
        sizing = size_scaled_resource(need, decision, self.request, self.settings, HYSTERESIS)
        self.replica_changes += decision.replicas != self.replicas
        self.resizes += sizing.pod_request != self.request
        self.replicas, self.request = decision.replicas, sizing.pod_request


def _settings(low: int, high: int, target: float) -> HorizontalSettings:
    return HorizontalSettings(min_replicas=low, max_replicas=high, target_utilisation=target)


@settings(max_examples=60, deadline=None)
@given(
    demand=st.floats(0.05, 50.0),
    noise=st.floats(0.0, 0.04),
    low=st.integers(1, 4),
    span=st.integers(0, 40),
    target=st.floats(0.3, 1.0),
    start_replicas=st.integers(1, 60),
    start_request=st.floats(0.01, 8.0),
    seed=st.integers(0, 2**16),
)
def test_the_joint_loop_settles_then_neither_oscillates_nor_drifts(
    demand: float,
    noise: float,
    low: int,
    span: int,
    target: float,
    start_replicas: int,
    start_request: float,
    seed: int,
) -> None:
    s = _settings(low, low + span, target)
    start = min(max(start_replicas, s.min_replicas), s.max_replicas)
    loop = Loop(s, start, start_request)
    rng = random.Random(seed)
    settle = 200  # 50 simulated minutes: stabilisation windows are 5
    for i in range(settle):
        loop.cycle(demand * (1 + rng.uniform(-noise, noise)), i * STEP)
    # Settling takes at most one resize of the pods per bound, never a ratchet.
    assert loop.resizes <= 2
    loop.replica_changes = loop.resizes = 0
    for i in range(settle, settle + DAY_STEPS):
        need = demand * (1 + rng.uniform(-noise, noise))
        loop.cycle(need, i * STEP)
        assert s.min_replicas <= loop.replicas <= s.max_replicas
        capacity = loop.replicas * loop.request * target
        if loop.replicas < s.max_replicas:
            # Enough for the need, and at most a bounded multiple of it.
            assert capacity >= need * (1 - 1e-9)
        assert capacity <= 3.0 * demand * (1 + noise) + loop.request * target
    # A steady day: a handful of changes at most, on both sides.
    assert loop.resizes <= 2
    assert loop.replica_changes <= 6


def test_between_the_bounds_the_request_stays_and_the_count_follows_the_load() -> None:
    # The fight of a CPU metric at 60 %: 1.66 cores on 250m pods need 12 replicas.
    loop = Loop(_settings(2, 30, 0.6), 12, 0.25)
    for i in range(2000):
        loop.cycle(1.66 + 0.38 * i / 2000, i * STEP)
    assert loop.request == 0.25
    assert loop.resizes == 0
    assert loop.replicas == math.ceil(2.04 / (0.25 * 0.6))


def test_at_max_replicas_pods_grow_to_hold_the_need_once() -> None:
    loop = Loop(_settings(1, 10, 1.0), 10, 1.0)
    for i in range(100):
        loop.cycle(15.0, i * STEP)
    assert loop.replicas == 10
    assert loop.request == 1.5
    assert loop.resizes == 1


def test_at_min_replicas_oversized_pods_shrink_with_headroom() -> None:
    s = _settings(2, 10, 0.5)
    loop = Loop(s, 2, 4.0)
    for i in range(100):
        loop.cycle(1.0, i * STEP)
    assert loop.replicas == 2
    assert loop.request == 1.0 / (2 * 0.5) * (1 + s.scale_down_tolerance)
    assert loop.resizes == 1


def test_missing_load_keeps_the_request() -> None:
    s = _settings(1, 10, 1.0)
    decision = decide_replicas(LoadSignal(None, None), ReplicaState(10, 1.0), s, 0.0)
    sizing = size_scaled_resource(None, decision, 1.0, s, HYSTERESIS)
    assert (sizing.pod_request, sizing.reason) == (1.0, VerticalReason.NO_DATA)
