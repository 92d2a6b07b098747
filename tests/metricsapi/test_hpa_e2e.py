"""End to end: an HPA scales on foresight's forecast, through the simulator's aggregation.

The simulated cluster (a daily load peaking at 14:00) holds what the chart installs for
foresight's external metrics API: its Service, the ``APIService`` with the generated
``caBundle``, and the HPA controller's RBAC; foresight serves the chart's certificate. The
simulator's API server proxies ``/apis/external.metrics.k8s.io/...`` to foresight over HTTPS
(verified with the ``caBundle``) with the front proxy's client certificate; foresight trusts
the front proxy named in kube-system/extension-apiserver-authentication, authorises the HPA
controller's service account with a SubjectAccessReview against the simulator's RBAC, and
answers from the forecast of a PredictiveAutoscaler in mode ``Recommend``. kubectl reads the
metric with ``get --raw``. Time is virtual: each step advances the cluster, collects,
reconciles and syncs the HPAs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from autoscaler.demo.run import write_history
from autoscaler.resource.crd import crd_manifest
from autoscaler.service import Service
from autoscaler.settings import Settings
from collectors.kube import api_client
from runtime.clock import VirtualClock
from runtime.quantity import format_cpu, parse_quantity
from simulator.cluster import SimulatedCluster
from simulator.front_proxy import FRONT_PROXY_CN, client_certificate
from simulator.scenario import parse_scenario
from simulator.tls import new_ca
from tests.controller.conftest import SCENARIO, START, pas, settings_for
from tests.helm.helmchart import NAMESPACE as CHART_NS
from tests.helm.helmchart import manifests
from tests.simulator.test_sim_kubectl import _kubectl_result
from tests.support.external import require_binary

HOUR = 3600.0
STEP = 150.0  # seconds between two syncs (upstream: 15; coarser keeps the test short)
NAMESPACE = "shop"  # of the workload
SERVICE = "foresight-external-metrics"  # the chart's, in its namespace
METRIC_PATH = (
    f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/foresight_autoscaler_forecast"
)


@dataclass
class Cluster:
    cluster: SimulatedCluster
    clock: VirtualClock
    api: k8s.ApiClient
    service: Service
    kubeconfig: Path

    async def create(self, obj: dict[str, Any]) -> None:
        await asyncio.to_thread(self.cluster.create, obj)

    async def step(self, seconds: float) -> None:
        await self.cluster.advance(seconds)
        await self.service.collect_once()
        await self.service.control_once()
        await self.cluster.api.hpa.sync_once()

    async def replicas(self) -> int:
        scale = await asyncio.to_thread(
            k8s.AppsV1Api(self.api).read_namespaced_deployment_scale, "web", NAMESPACE
        )
        return int(scale.spec.replicas)

    def demand(self) -> float:
        load = self.cluster.kubelets.behaviours[(NAMESPACE, "web")].load
        assert load is not None
        return load.demand(self.clock.now() - START)

    def ready(self) -> int:
        model = self.service.watcher.model
        return next(w.ready for w in model.workloads("Deployment") if w.name == "web")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def external_settings(tmp: Path, kubeconfig: Path, pem: dict[str, bytes]) -> Settings:
    base = settings_for(tmp, kubeconfig).model_dump()
    base["external_metrics"] = {
        "enabled": True,
        "port": 0,
        "tls_cert_file": _write(tmp / "tls.crt", pem["cert"]),
        "tls_key_file": _write(tmp / "tls.key", pem["key"]),
        # The front proxy's CA and names: from kube-system/extension-apiserver-authentication,
        # which the simulator writes as kube-apiserver does.
    }
    return Settings.model_validate(base)


def chart_objects() -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """What the chart installs for the external metrics API (its Service, APIService and the
    HPA controller's RBAC), and its generated serving certificate and key."""
    rendered = manifests({"externalMetrics": {"enabled": True}})
    wanted = [
        rendered.one("Service", SERVICE),
        rendered.one("APIService"),
        rendered.one("ClusterRole", f"{SERVICE}-reader"),
        rendered.one("ClusterRoleBinding", f"{SERVICE}-reader"),
    ]
    secret = rendered.one("Secret", f"{SERVICE}-tls")
    pem = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    return wanted, {"cert": pem["tls.crt"], "key": pem["tls.key"]}


def endpoints(port: int) -> dict[str, Any]:
    """What the endpoints controller would write for the Service: foresight on loopback (with
    ``--enable-aggregator-routing``, kube-apiserver dials the endpoint)."""
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": SERVICE, "namespace": CHART_NS},
        "subsets": [
            {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port}]}
        ],
    }


def hpa(average_value: str = "225m") -> dict[str, Any]:
    """An HPA on ``web`` following foresight's forecast peak: a replica per 225m of it, 90 %
    of the 250m request, because the HPA leaves the count alone within 10 % of its target."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 30,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": "foresight_autoscaler_forecast",
                            "selector": {"matchLabels": {"workload": "web"}},
                        },
                        "target": {"type": "AverageValue", "averageValue": average_value},
                    },
                }
            ],
        },
    }


def recommend() -> dict[str, Any]:
    return pas(
        "web",
        {
            "targetRef": {"kind": "Deployment", "name": "web"},
            "mode": "Recommend",
            "horizontal": {
                "minReplicas": 2,
                "maxReplicas": 30,
                "metric": {"type": "CPU", "targetUtilization": 100},
            },
            "forecast": {"horizonSeconds": 600},
        },
    )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Cluster]:
    installed, pem = chart_objects()
    proxy_ca = new_ca("front-proxy-ca")
    clock = VirtualClock(start=START, autoadvance=False)
    cluster = SimulatedCluster(parse_scenario(SCENARIO, "hpa.yaml"), clock)
    cluster.api.aggregator.front_proxy = client_certificate(proxy_ca, FRONT_PROXY_CN)
    cluster.api.hpa.sync_seconds = None  # synced by the test's steps
    await cluster.start(run_loop=False)
    kubeconfig = tmp_path / "kubeconfig"
    cluster.write_kubeconfig(kubeconfig)
    settings = external_settings(tmp_path, kubeconfig, pem)
    api = api_client(settings.kubernetes)
    crd: Any = crd_manifest()
    await asyncio.to_thread(k8s.ApiextensionsV1Api(api).create_custom_resource_definition, crd)
    service = Service(settings, clock, api=api, persistent=True)
    load = cluster.kubelets.behaviours[(NAMESPACE, "web")].load
    assert load is not None
    write_history(service.store, load, NAMESPACE, "web", START, 2.0)
    await service.start()
    await service.wait_synced()
    await service.serve_http()
    assert service.external_metrics_port is not None
    rig = Cluster(cluster, clock, api, service, kubeconfig)
    await rig.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CHART_NS}})
    for obj in [*installed, endpoints(service.external_metrics_port)]:
        await rig.create(obj)
    try:
        yield rig
    finally:
        await service.close()
        api.close()
        await cluster.stop()
        await clock.aclose()


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _kubectl_result(require_binary("kubectl"), kubeconfig, *args)


@pytest.mark.timeout(300)
async def test_kubectl_reads_the_forecast_and_the_hpa_scales_before_the_load(rig: Cluster) -> None:
    await rig.create(recommend())
    await rig.create(hpa())
    replicas: list[int] = []
    demand: list[float] = []
    short = 0
    # 08:00 to 15:00: the load rises to its 14:00 peak of 3 cores and starts to fall.
    for _ in range(int(7 * HOUR / STEP)):
        await rig.step(STEP)
        replicas.append(await rig.replicas())
        demand.append(rig.demand())
        if rig.demand() > rig.ready() * 0.25 + 1e-9:
            short += 1
    # kubectl through the simulator's aggregation, as an administrator would check it.
    result = await asyncio.to_thread(kubectl, rig.kubeconfig, "get", "--raw", METRIC_PATH)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert listed["kind"] == "ExternalMetricValueList"
    [item] = listed["items"]
    assert item["metricLabels"]["workload"] == "web"
    snapshot = next(s for s in rig.service.controller.snapshots() if s.name == "web")
    assert snapshot.forecast is not None
    assert item["value"] == format_cpu(snapshot.forecast)
    # The HPA followed the forecast: up to the peak, before it, with pods ready in time.
    peak = max(replicas)
    assert peak >= math.ceil(2.9 / 0.25)
    assert replicas.index(peak) < len(replicas) * 0.9
    assert short / len(replicas) < 0.03  # 3 of 168 steps in the last run
    # Ahead of the load: at some step the HPA had more pods than the load of the moment
    # needed (an HPA on usage would have had exactly ceil(load / 250m)).
    ahead = [r - math.ceil(d / 0.25) for r, d in zip(replicas, demand, strict=True)]
    assert max(ahead) >= 2
    status = await asyncio.to_thread(
        k8s.AutoscalingV2Api(rig.api).read_namespaced_horizontal_pod_autoscaler_status,
        "web",
        NAMESPACE,
    )
    conditions = {c.type: c.status for c in status.status.conditions}
    assert conditions["ScalingActive"] == "True"
    current = status.status.current_metrics[0].external.current.average_value
    assert parse_quantity(current) > 0
    # foresight's own controller saw the HPA and left scaling to it (mode Recommend).
    apiservice = await asyncio.to_thread(
        kubectl, rig.kubeconfig, "get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"
    )
    assert apiservice.returncode == 0, apiservice.stderr
    assert "foresight_autoscaler_forecast" in apiservice.stdout
