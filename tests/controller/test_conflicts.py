"""Two PredictiveAutoscalers (or one and an HPA) on one workload: all are told, none acts."""

from __future__ import annotations

import asyncio
from typing import Any

from autoscaler.resource.model import GROUP, PLURAL, VERSION
from tests.controller.conftest import Rig, horizontal, pas


async def _conflict(rig: Rig, name: str) -> dict[str, Any]:
    conditions = {c["type"]: c for c in (await rig.status(name))["conditions"]}
    return conditions["ConflictingAutoscaler"]


async def test_two_autoscalers_on_one_workload_both_report_it_and_neither_scales(
    rig: Rig,
) -> None:
    # Created a minute apart, the older with the later name: the order is by age, not name.
    await rig.create(pas("web-b", horizontal()))
    await rig.step(60)
    await rig.create(pas("web-a", horizontal()))
    parked = horizontal(mode="Off")
    await rig.create(pas("web-parked", parked))  # Off claims nothing
    before = await rig.replicas()  # web-b alone may have scaled in its first minute
    scaled = len([e for e in await rig.events() if e.reason in ("ScaledUp", "ScaledDown")])
    for _ in range(20):
        await rig.step(120)
    assert await rig.replicas() == before  # the load needs more; neither may scale
    assert len([e for e in await rig.events() if e.reason in ("ScaledUp", "ScaledDown")]) == scaled
    for name, other in (("web-a", "web-b"), ("web-b", "web-a")):
        conflict = await _conflict(rig, name)
        assert conflict["status"] == "True", name
        assert conflict["reason"] == "ConflictDetected"
        assert f"PredictiveAutoscaler shop/{other} targets Deployment/web" in conflict["message"]
        assert "web-parked" not in conflict["message"]
        assert conflict["message"].endswith("not acting")
        # Each still forecasts and says what it would do.
        assert (await rig.status(name))["desiredReplicas"] > before
    # The snapshot the dashboards read says the same.
    conditions = {s.name: s.conditions for s in rig.service.controller.snapshots()}
    assert conditions["web-a"]["ConflictingAutoscaler"] == "True"
    assert conditions["web-b"]["ConflictingAutoscaler"] == "True"

    # Once one is gone, the other acts.
    await asyncio.to_thread(
        rig.custom.delete_namespaced_custom_object, GROUP, VERSION, "shop", PLURAL, "web-a"
    )
    for _ in range(5):
        await rig.step(120)
    conflict = await _conflict(rig, "web-b")
    assert conflict["status"] == "False" and conflict["reason"] == "NoConflict"
    assert await rig.replicas() > before


async def test_three_claims_and_an_hpa_are_all_named_oldest_first(rig: Rig) -> None:
    await rig.create(pas("zeta", horizontal(mode="Recommend")))
    await rig.step(60)
    await rig.create(pas("alpha", horizontal()))
    await rig.step(60)
    await rig.create(pas("mid", horizontal()))
    await rig.create_hpa("web-hpa")
    other = horizontal()
    other["targetRef"]["name"] = "worker"
    await rig.create(pas("worker", other))
    for _ in range(5):
        await rig.step(120)
    message = (await _conflict(rig, "mid"))["message"]
    assert "HorizontalPodAutoscaler shop/web-hpa" in message
    assert message.index("shop/zeta") < message.index("shop/alpha")
    assert "shop/mid " not in message  # never itself
    assert "shop/mid" in (await _conflict(rig, "zeta"))["message"]
    assert (await _conflict(rig, "worker"))["status"] == "False"
    assert await rig.replicas() == 2
