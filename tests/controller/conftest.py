"""A simulated cluster and the whole service in one event loop, stepped by the test.

Time is a VirtualClock that only the test moves: each ``step`` advances the cluster, runs one
collection cycle and one reconcile, as ``foresight run`` does on its timers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from autoscaler.demo.run import write_history
from autoscaler.resource.crd import crd_manifest
from autoscaler.resource.model import GROUP, PLURAL, VERSION
from autoscaler.service import Service
from autoscaler.settings import Settings
from collectors.kube import api_client
from runtime.clock import VirtualClock
from simulator.cluster import SimulatedCluster
from simulator.scenario import parse_scenario

# Monday 2026-01-05 08:00 UTC: the daily load rises towards its 14:00 peak.
START = 1_767_600_000.0

SCENARIO = """
name: controller
seed: 3
tick: 10s
nodes:
  - {name: node, count: 3, cpu: "16", memory: 64Gi}
namespaces: [shop]
workloads:
  - name: web
    namespace: shop
    replicas: 2
    requests: {cpu: 250m, memory: 128Mi}
    limits: {cpu: "1", memory: 256Mi}
    startupSeconds: 30
    load: {pattern: daily, peak: 3.0, base: 0.1, peakHour: 14, noise: 0.02}
    memory: {base: 64Mi, perCore: 32Mi}
  - name: worker
    namespace: shop
    replicas: 1
    requests: {cpu: 100m, memory: 128Mi}
    limits: {cpu: 500m, memory: 512Mi}
    startupSeconds: 5
    load: {pattern: constant, peak: 0.2, noise: 0}
    memory: {base: 100Mi, perCore: 0, leakPerHour: 200Mi}
"""


def pas(name: str, spec: dict[str, Any], namespace: str = "shop") -> dict[str, Any]:
    """A PredictiveAutoscaler object."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PredictiveAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def horizontal(mode: str = "Auto", **extra: Any) -> dict[str, Any]:
    """A PAS spec scaling ``web`` on CPU."""
    return {
        "targetRef": {"kind": "Deployment", "name": "web"},
        "mode": mode,
        "horizontal": {
            "minReplicas": 2,
            "maxReplicas": 30,
            "metric": {"type": "CPU", "targetUtilization": 100},
            **extra,
        },
        "forecast": {"horizonSeconds": 90},
    }


@dataclass
class Rig:
    cluster: SimulatedCluster
    clock: VirtualClock
    api: k8s.ApiClient
    service: Service
    make_service: Callable[[], Service]

    @property
    def apps(self) -> k8s.AppsV1Api:
        return k8s.AppsV1Api(self.api)

    @property
    def custom(self) -> k8s.CustomObjectsApi:
        return k8s.CustomObjectsApi(self.api)

    async def create(self, obj: dict[str, Any]) -> None:
        ns = obj["metadata"]["namespace"]
        await asyncio.to_thread(
            self.custom.create_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, obj
        )

    async def create_hpa(self, name: str, target: str = "web") -> None:
        """A Kubernetes HorizontalPodAutoscaler (1 to 5 replicas) on Deployment ``target``."""
        hpa = k8s.V2HorizontalPodAutoscaler(
            metadata=k8s.V1ObjectMeta(name=name, namespace="shop"),
            spec=k8s.V2HorizontalPodAutoscalerSpec(
                scale_target_ref=k8s.V2CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name=target
                ),
                min_replicas=1,
                max_replicas=5,
            ),
        )
        await asyncio.to_thread(
            k8s.AutoscalingV2Api(self.api).create_namespaced_horizontal_pod_autoscaler, "shop", hpa
        )

    async def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            "shop",
            PLURAL,
            name,
            {"spec": spec},
        )

    async def status(self, name: str) -> dict[str, Any]:
        obj = await asyncio.to_thread(
            self.custom.get_namespaced_custom_object, GROUP, VERSION, "shop", PLURAL, name
        )
        status: dict[str, Any] = obj.get("status") or {}
        return status

    async def replicas(self, name: str = "web") -> int:
        scale = await asyncio.to_thread(self.apps.read_namespaced_deployment_scale, name, "shop")
        return int(scale.spec.replicas)

    async def step(self, seconds: float = 60.0, collect: bool = True) -> None:
        await self.cluster.advance(seconds)
        if collect:
            await self.service.collect_once()
        await self.service.control_once()

    def demand(self, name: str = "web") -> float:
        load = self.cluster.kubelets.behaviours[("shop", name)].load
        assert load is not None
        return load.demand(self.clock.now() - START)

    async def events(self) -> list[k8s.CoreV1Event]:
        listed = await asyncio.to_thread(k8s.CoreV1Api(self.api).list_namespaced_event, "shop")
        return [e for e in listed.items if e.source and e.source.component == "foresight"]


def settings_for(tmp: Path, kubeconfig: Path) -> Settings:
    return Settings.model_validate(
        {
            "store": {"data_dir": tmp / "data"},
            "rules": {"state_dir": tmp / "alerts"},
            # Any free loopback port: suites running side by side never share one.
            "server": {"host": "127.0.0.1", "port": 0, "api_port": 0},
            "kubernetes": {
                "kubeconfig": kubeconfig,
                "retry_initial_seconds": 0.1,
                "retry_max_seconds": 1,
            },
            "collectors": {
                "kubelet_scheme": "http",
                "stagger_seconds": 0,
                "token_file": None,
                "ca_file": None,
            },
            "leader": {"enabled": False},
            "controller": {"history_step_seconds": 60, "status_every_seconds": 60},
        }
    )


@asynccontextmanager
async def open_rig(
    tmp_path: Path, scenario: str = SCENARIO, history: tuple[str, ...] = ("web",)
) -> AsyncIterator[Rig]:
    """A started rig on ``scenario``, with two days of history for the ``history`` workloads."""
    # Time moves only when the test says (the simulator's watches sleep on this clock too:
    # a clock that jumped whenever the loop idled would run away).
    clock = VirtualClock(start=START, autoadvance=False)
    cluster = SimulatedCluster(parse_scenario(scenario, "controller.yaml"), clock)
    await cluster.start(run_loop=False)
    kubeconfig = tmp_path / "kubeconfig"
    cluster.write_kubeconfig(kubeconfig)
    settings = settings_for(tmp_path, kubeconfig)
    api = api_client(settings.kubernetes)
    crd: Any = crd_manifest()
    await asyncio.to_thread(k8s.ApiextensionsV1Api(api).create_custom_resource_definition, crd)

    def make_service() -> Service:
        return Service(settings, clock, api=api, persistent=True)

    service = make_service()
    for name in history:
        load = cluster.kubelets.behaviours[("shop", name)].load
        assert load is not None
        write_history(service.store, load, "shop", name, START, 2.0)
    await service.start()
    await service.wait_synced()
    rig = Rig(cluster, clock, api, service, make_service)
    try:
        yield rig
    finally:
        await rig.service.close()
        api.close()
        await cluster.stop()
        await clock.aclose()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with open_rig(tmp_path) as started:
        yield started
