"""The controller on the simulated cluster, through the official client, end to end."""

from __future__ import annotations

import math

from tests.controller.conftest import Rig, horizontal, pas

HOUR = 3600.0


async def test_auto_follows_a_rising_and_falling_load_with_pods_ready_before_the_peak(
    rig: Rig,
) -> None:
    await rig.create(pas("web", horizontal(scaleDownStabilizationSeconds=300)))
    replicas: list[int] = []
    short = 0
    steps = 0
    reasons: set[str] = set()
    # 08:00 to 20:00: the load rises to its 14:00 peak of 3 cores and falls again.
    for i in range(int(12 * HOUR / 120)):
        await rig.step(120)
        if i % 20 == 0:  # events live for an hour in the API, as in a real cluster
            reasons |= {e.reason for e in await rig.events()}
        current = await rig.replicas()
        assert 2 <= current <= 30
        replicas.append(current)
        ready = next(
            w.ready for w in rig.service.watcher.model.workloads("Deployment") if w.name == "web"
        )
        steps += 1
        if rig.demand() > ready * 0.25 + 1e-9:
            short += 1
    peak = max(replicas)
    assert peak >= math.ceil(2.9 / 0.25)  # 12 pods of 250m cover a 3-core peak
    assert replicas.index(peak) < len(replicas) * 0.6  # at the peak, not after it
    assert replicas[-1] < peak  # and back down as the load falls
    assert short / steps < 0.02  # pods were ready before the load needed them
    status = await rig.status("web")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["AbleToScale"]["status"] == "True"
    assert conditions["ConflictingAutoscaler"]["status"] == "False"
    assert status["desiredReplicas"] == status["currentReplicas"]
    assert status["forecast"]["quantile"] == 0.9995
    assert status["lastDecision"]["direction"] in ("up", "down")
    reasons |= {e.reason for e in await rig.events()}
    assert {"ScaledUp", "ScaledDown"} <= reasons


async def test_recommend_writes_status_but_never_scales(rig: Rig) -> None:
    await rig.create(pas("web", horizontal(mode="Recommend")))
    for _ in range(30):
        await rig.step(120)
    assert await rig.replicas() == 2
    status = await rig.status("web")
    assert status["desiredReplicas"] > 2  # it would have scaled up
    assert status["currentReplicas"] == 2
    assert not await rig.events()


async def test_an_hpa_on_the_same_workload_is_reported_and_respected(rig: Rig) -> None:
    await rig.create_hpa("web")
    await rig.create(pas("web", horizontal()))
    for _ in range(20):
        await rig.step(120)
    assert await rig.replicas() == 2
    conditions = {c["type"]: c for c in (await rig.status("web"))["conditions"]}
    conflict = conditions["ConflictingAutoscaler"]
    assert conflict["status"] == "True"
    assert "HorizontalPodAutoscaler shop/web" in conflict["message"]


async def test_an_invalid_autoscaler_gets_a_condition_and_the_others_go_on(rig: Rig) -> None:
    bad = horizontal()
    bad["horizontal"]["minReplicas"] = 9
    bad["horizontal"]["maxReplicas"] = 3  # CEL would refuse this; the controller must too
    await rig.create(pas("broken", bad))
    missing = horizontal()
    missing["targetRef"]["name"] = "nope"
    await rig.create(pas("missing", missing))
    await rig.create(pas("web", horizontal()))
    for _ in range(10):
        await rig.step(120)
    broken = {c["type"]: c for c in (await rig.status("broken"))["conditions"]}
    assert broken["AbleToScale"]["reason"] == "InvalidSpec"
    assert "spec.horizontal" in broken["AbleToScale"]["message"]
    assert "minReplicas (9) must be <= maxReplicas (3)" in broken["AbleToScale"]["message"]
    gone = {c["type"]: c for c in (await rig.status("missing"))["conditions"]}
    assert gone["AbleToScale"]["reason"] == "TargetNotFound"
    assert await rig.replicas() > 2  # the valid one still scaled
    warnings = [e for e in await rig.events() if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["InvalidSpec"]  # once, not every cycle


async def test_no_scale_down_while_the_load_is_stale(rig: Rig) -> None:
    await rig.create(pas("web", horizontal(scaleDownStabilizationSeconds=0)))
    for _ in range(int(6 * HOUR / 120)):  # up to 14:00
        await rig.step(120)
    high = await rig.replicas()
    assert high >= 10
    # Collection stops (kubelets unreachable, say) while the load falls: hold, do not guess.
    for _ in range(int(4 * HOUR / 120)):
        await rig.step(120, collect=False)
    assert await rig.replicas() == high
    able = {c["type"]: c for c in (await rig.status("web"))["conditions"]}["AbleToScale"]
    assert able["reason"] == "FailStatic"
    # Data again: it scales down.
    for _ in range(5):
        await rig.step(120)
    assert await rig.replicas() < high
