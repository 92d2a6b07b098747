"""API faults, leader failover between two instances, and kill -9 in the middle of a scale-up."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from autoscaler.service import Service
from runtime.families import expanded
from simulator.faults import FaultSpec
from tests.controller.conftest import Rig, horizontal, pas, settings_for

HOUR = 3600.0
REPO = Path(__file__).resolve().parents[2]


async def _drive(rig: Rig, work: Any) -> None:
    """Run ``work`` while time moves on, so retry pauses on the clock pass."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.sleep(0.005)
        rig.clock.advance(0.5)
    await task


async def test_api_errors_on_scale_are_retried_and_bounds_hold(rig: Rig) -> None:
    await rig.create(pas("web", horizontal()))
    # Every other scale write fails with 500, and some with 429 + Retry-After.
    rig.cluster.inject(
        FaultSpec(type="api-error", verbs=("update",), resources=("deployments",), probability=0.5)
    )
    rig.cluster.inject(
        FaultSpec.model_validate(
            {
                "type": "api-error",
                "verbs": ["update"],
                "resources": ["deployments"],
                "code": 429,
                "retryAfter": 2,
                "probability": 0.3,
            }
        )
    )
    seen = []
    for _ in range(int(5 * HOUR / 120)):
        await rig.cluster.advance(120)
        await rig.service.collect_once()
        await _drive(rig, rig.service.control_once())
        seen.append(await rig.replicas())
    assert all(2 <= r <= 30 for r in seen)
    assert max(seen) >= 8  # it got through


async def _service(rig: Rig, tmp: Path, identity: str) -> Service:
    kubeconfig = tmp / "kubeconfig"
    rig.cluster.write_kubeconfig(kubeconfig)
    base = settings_for(tmp / identity, kubeconfig)
    settings = base.model_copy(
        update={
            "leader": base.leader.model_copy(
                update={"enabled": True, "identity": identity, "namespace": "shop"}
            )
        }
    )
    service = Service(settings, rig.clock, api=rig.api, persistent=False)
    await service.start()
    await service.wait_synced()
    return service


async def test_leader_failover_between_two_instances(rig: Rig, tmp_path: Path) -> None:
    await rig.create(pas("web", horizontal()))
    a = await _service(rig, tmp_path, "a")
    b = await _service(rig, tmp_path, "b")
    try:
        assert await a.elector.try_acquire_or_renew()
        assert not await b.elector.try_acquire_or_renew()
        for _ in range(15):  # the load rises: only the leader acts
            await rig.cluster.advance(120)
            for s in (a, b):
                await s.elector.try_acquire_or_renew()
                await s.collect_once()
                await s.control_once()
        assert a.controller.actions_log and not b.controller.actions_log
        # a is cut off from the API: it cannot renew, but its controller keeps running.
        before = await rig.replicas()
        for _ in range(12):  # 12 x 5 s = one minute, four lease periods
            await rig.cluster.advance(5)
            await b.elector.try_acquire_or_renew()
        assert not a.elector.is_leader()  # stops acting within one lease period
        assert b.elector.is_leader()
        # Only the leader exports the cluster's state, so that sums do not double.
        assert a.registry.get_sample_value("foresight_leader", {"identity": "a"}) == 0
        assert b.registry.get_sample_value("foresight_leader", {"identity": "b"}) == 1
        names = {m.name for m in expanded(a.registry.collect())}
        assert "foresight_node_capacity" not in names and "foresight_scrape_attempts" in names
        assert "foresight_node_capacity" in {m.name for m in expanded(b.registry.collect())}
        lease = await asyncio.to_thread(
            k8s.CoordinationV1Api(rig.api).read_namespaced_lease, "foresight-leader", "shop"
        )
        assert lease.spec.holder_identity == "b"
        assert lease.spec.lease_transitions == 1
        acted_by_a = len(a.controller.actions_log)
        # New bounds that need an action: only the new leader may take it.
        await rig.patch_spec("web", {"horizontal": {"minReplicas": 20}})
        for _ in range(3):
            await rig.cluster.advance(120)
            for s in (a, b):
                if s is b:
                    await s.elector.try_acquire_or_renew()
                await s.collect_once()
                await s.control_once()
        assert len(a.controller.actions_log) == acted_by_a
        assert [x["reason"] for x in b.controller.actions_log] == ["min_replicas"]
        assert await rig.replicas() == 20 != before
        # A graceful stop releases the lease at once.
        await b.elector.release()
        assert await a.elector.try_acquire_or_renew()
    finally:
        await a.close()
        await b.close()


async def test_kill_9_in_the_middle_of_a_scale_up_then_restart(rig: Rig, tmp_path: Path) -> None:
    # A constant load of 5 replicas' worth, from a query that is always fresh.
    spec = horizontal()
    spec["horizontal"]["metric"] = {"type": "Query", "query": "vector(5)", "targetPerReplica": 1}
    spec["horizontal"]["maxReplicas"] = 6
    await rig.create(pas("web", spec))
    # Scale writes hang for 3 s: the process is killed while one is in flight.
    rig.cluster.inject(
        FaultSpec(type="api-slow", verbs=("update",), resources=("deployments",), delay=3.0)
    )
    kubeconfig = tmp_path / "kubeconfig"
    rig.cluster.write_kubeconfig(kubeconfig)
    env = {
        **os.environ,
        "FORESIGHT_KUBERNETES__KUBECONFIG": str(kubeconfig),
        "FORESIGHT_STORE__DATA_DIR": str(tmp_path / "controller-data"),
        "FORESIGHT_RULES__STATE_DIR": str(tmp_path / "controller-alerts"),
        "FORESIGHT_LEADER__ENABLED": "false",
        "FORESIGHT_SERVER__HOST": "127.0.0.1",
        "FORESIGHT_SERVER__PORT": "0",
        "FORESIGHT_CONTROLLER__INTERVAL_SECONDS": "0.2",
    }
    config = tmp_path / "foresight.yaml"
    config.write_text(
        "collectors:\n  kubelet_scheme: http\n  ca_file: null\n  token_file: null\n",
        encoding="utf-8",
    )
    command = [
        sys.executable,
        "-m",
        "autoscaler.cli.main",
        "--config",
        str(config),
        "--log-level",
        "DEBUG",
        "run",
    ]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    observed: list[int] = []

    async def wait_for(predicate: Any, what: str) -> None:
        for _ in range(400):
            observed.append(await rig.replicas())
            if predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    first = start()
    assert first.stderr is not None
    lines: list[str] = []

    def read_until_write() -> None:
        assert first.stderr is not None
        for raw in first.stderr:
            lines.append(raw.decode(errors="replace"))
            if "writing 2 -> 5 replicas" in lines[-1]:
                return

    try:
        reader = asyncio.ensure_future(asyncio.to_thread(read_until_write))
        await wait_for(reader.done, "the first scale write")
        assert any("writing 2 -> 5" in line for line in lines), "".join(lines[-20:])
        os.kill(first.pid, signal.SIGKILL)  # the write is held by the server for 3 s
        await asyncio.to_thread(first.wait)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        await reader
        first.stderr.close()
    second = start()
    try:
        await wait_for(lambda: observed[-1] == 5, "5 replicas after the restart")
        rig.cluster.faults.clear()
        for _ in range(20):  # more cycles: nothing else may happen
            await asyncio.sleep(0.05)
            observed.append(await rig.replicas())
    finally:
        second.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(second.wait, 20)
        assert second.stderr is not None
        second.stderr.close()
    assert code == 0  # SIGTERM: a graceful stop
    assert observed[-1] == 5
    assert all(2 <= r <= 6 for r in observed)
    scaled = [e for e in await rig.events() if e.reason == "ScaledUp"]
    assert len(scaled) <= 1  # the killed attempt's event, or the restart's: never two


async def test_hung_scale_requests_time_out_and_are_retried(rig: Rig, tmp_path: Path) -> None:
    await rig.create(pas("web", horizontal()))
    kubeconfig = tmp_path / "kubeconfig"
    rig.cluster.write_kubeconfig(kubeconfig)
    base = settings_for(tmp_path / "hung", kubeconfig)
    settings = base.model_copy(
        update={"kubernetes": base.kubernetes.model_copy(update={"request_timeout_seconds": 0.5})}
    )
    service = Service(settings, rig.clock, api=rig.api, persistent=False)
    await service.start()
    await service.wait_synced()
    try:
        for _ in range(int(2 * HOUR / 120)):  # the load rises: scale-ups are due
            await rig.cluster.advance(120)
            await service.collect_once()
            await service.control_once()
        before = await rig.replicas()
        # Scale writes hang (the server never answers) for ten virtual minutes.
        rig.cluster.inject(
            FaultSpec.model_validate(
                {
                    "type": "api-timeout",
                    "verbs": ["update"],
                    "resources": ["deployments"],
                    "at": rig.clock.now() - rig.cluster.start_time,
                    "duration": 600,
                }
            )
        )
        # A new minimum makes a scale-up due at once, while writes hang.
        await rig.patch_spec("web", {"horizontal": {"minReplicas": 20}})
        await rig.cluster.advance(30)
        await service.collect_once()
        await _drive(rig, service.control_once())
        assert service.controller.reconcile_errors == 1  # the cycle gave up on the hung write
        assert await rig.replicas() == before
        for _ in range(8):
            await rig.cluster.advance(120)
            await service.collect_once()
            await _drive(rig, service.control_once())
        assert await rig.replicas() == 20  # through, once the fault ended
    finally:
        rig.cluster.api.stop_hanging()
        await service.close()


async def test_a_leader_cut_off_from_the_api_stops_acting_but_keeps_notifying(
    rig: Rig, tmp_path: Path
) -> None:
    a = await _service(rig, tmp_path, "a")
    b = await _service(rig, tmp_path, "b")
    try:
        assert await a.elector.try_acquire_or_renew()
        assert not await b.elector.try_acquire_or_renew()
        assert a.elector.may_notify() and a.alerts.leader
        assert not b.elector.may_notify() and not b.alerts.leader
        # The API server answers 503 to every Lease call: nobody can take the Lease over.
        rig.cluster.inject(FaultSpec(type="api-error", resources=("leases",), code=503))
        for _ in range(12):  # one minute, four lease periods
            await rig.cluster.advance(5)
            for s in (a, b):
                await s.elector.try_acquire_or_renew()
        assert not a.elector.is_leader()  # scaling stops within one lease period
        assert a.elector.may_notify() and a.alerts.leader  # alerts are not silenced
        assert not b.elector.may_notify()  # b never held it: it does not start notifying
        # The API server answers again and b takes the expired Lease: a learns it and stops.
        rig.cluster.faults.clear()
        assert await b.elector.try_acquire_or_renew()
        assert not await a.elector.try_acquire_or_renew()
        assert not a.elector.may_notify() and not a.alerts.leader
        assert b.elector.may_notify() and b.alerts.leader
    finally:
        await a.close()
        await b.close()
