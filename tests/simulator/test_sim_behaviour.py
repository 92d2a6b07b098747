"""Cluster behaviour: traces, OOM kills, Jobs and CronJobs, node failure, API faults."""

from __future__ import annotations

from pathlib import Path

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from runtime.clock import VirtualClock
from simulator.background import BackgroundCluster
from simulator.faults import FaultSpec
from simulator.scenario import parse_scenario
from tests.support.traces import write_daily_trace

START = 1_740_000_000.0  # 2025-02-19T21:20:00Z


def _cluster(text: str, source: Path | str = "scenario.yaml") -> BackgroundCluster:
    scenario = parse_scenario(text, source)
    return BackgroundCluster(scenario, VirtualClock(start=START, speed=None, autoadvance=False))


def _client(bg: BackgroundCluster) -> client.ApiClient:
    config = client.Configuration()
    config.host = bg.api_url
    config.retries = False  # the tests look at each answer, not at urllib3's retries
    return client.ApiClient(config)


NODES = "nodes: [{name: n, count: 2, cpu: '4', memory: 8Gi}]\n"


def test_memory_leak_ends_in_oom_kill_and_restart() -> None:
    text = (
        NODES
        + """
workloads:
  - name: leaky
    requests: {cpu: 100m, memory: 128Mi}
    limits: {memory: 256Mi}
    startupSeconds: 0
    memory: {base: 200Mi, perCore: 0, leakPerHour: 120Mi}
"""
    )
    with _cluster(text) as bg, _client(bg) as api:
        bg.advance(3600)
        pod = client.CoreV1Api(api).list_namespaced_pod("default").items[0]
        status = pod.status.container_statuses[0]
        assert status.restart_count >= 1
        assert status.last_state.terminated.reason == "OOMKilled"
        assert status.last_state.terminated.exit_code == 137
        reasons = {e.reason for e in client.CoreV1Api(api).list_namespaced_event("default").items}
        assert "OOMKilling" in reasons


def test_cronjob_fires_on_schedule_and_jobs_complete() -> None:
    text = (
        NODES
        + """
workloads:
  - name: report
    kind: CronJob
    schedule: "*/10 * * * *"
    jobSeconds: 2m
    startupSeconds: 0
"""
    )
    with _cluster(text) as bg, _client(bg) as api:
        bg.advance(25 * 60)
        batch = client.BatchV1Api(api)
        jobs = batch.list_namespaced_job("default").items
        assert len(jobs) == 2
        assert all(j.metadata.owner_references[0].kind == "CronJob" for j in jobs)
        done = [j for j in jobs if j.status.succeeded == 1]
        assert done and done[0].status.completion_time is not None
        cj = batch.read_namespaced_cron_job("report", "default")
        assert cj.status.last_schedule_time is not None
        pods = client.CoreV1Api(api).list_namespaced_pod("default").items
        assert any(p.status.phase == "Succeeded" for p in pods)


def test_node_failure_evicts_pods_that_move_and_node_returns() -> None:
    text = """
nodes: [{name: n, count: 2, cpu: '4', memory: 8Gi}]
evictionSeconds: 60
workloads:
  - {name: web, replicas: 4, startupSeconds: 0}
faults:
  - {type: node-down, node: n-1, at: 5m, duration: 10m}
"""
    with _cluster(text) as bg, _client(bg) as api:
        core = client.CoreV1Api(api)
        bg.advance(4 * 60)
        assert {p.spec.node_name for p in core.list_namespaced_pod("default").items} == {
            "n-1",
            "n-2",
        }
        bg.advance(2 * 60)
        node = core.read_node("n-1")
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.status == "Unknown"
        assert any(t.key == "node.kubernetes.io/unreachable" for t in node.spec.taints)
        bg.advance(60)
        pods = core.list_namespaced_pod("default").items
        assert len(pods) == 4 and {p.spec.node_name for p in pods} == {"n-2"}
        bg.advance(10 * 60)
        ready = next(c for c in core.read_node("n-1").status.conditions if c.type == "Ready")
        assert ready.status == "True"


def test_trace_load_drives_usage(tmp_path: Path) -> None:
    trace = write_daily_trace(tmp_path / "daily.csv", days=2)
    text = (
        NODES
        + f"""
workloads:
  - name: web
    replicas: 2
    startupSeconds: 0
    load: {{trace: {trace}, peak: 2.0}}
"""
    )
    with _cluster(text) as bg, _client(bg) as api:
        bg.advance(600)
        assert bg.cluster is not None
        usage = bg.call(
            lambda: sum(
                p.cpu_rate for n in bg.cluster.kubelets.nodes.values() for p in n.pods.values()
            )
        )
        assert 0.0 < usage <= 4.0
        metrics = client.CustomObjectsApi(api).list_cluster_custom_object(
            "metrics.k8s.io", "v1beta1", "nodes"
        )
        assert len(metrics["items"]) == 2


def test_api_faults_429_with_retry_after_on_chosen_verbs() -> None:
    text = (
        NODES
        + """
faults:
  - {type: api-error, code: 429, retryAfter: 3, verbs: [list], resources: [pods], duration: 1m}
"""
    )
    with _cluster(text) as bg, _client(bg) as api:
        core = client.CoreV1Api(api)
        with pytest.raises(ApiException) as e:
            core.list_namespaced_pod("default")
        assert e.value.status == 429 and e.value.headers["Retry-After"] == "3"
        core.list_node()  # other resources are fine
        bg.advance(60)
        core.list_namespaced_pod("default")


def test_api_timeout_fault_hangs_until_the_client_gives_up() -> None:

    with _cluster(NODES) as bg, _client(bg) as api:
        assert bg.cluster is not None
        cluster = bg.cluster
        bg.call(lambda: cluster.inject(FaultSpec(type="api-timeout", verbs=("get",))))
        with pytest.raises(urllib3.exceptions.HTTPError):
            client.CoreV1Api(api).read_node("n-1", _request_timeout=0.3)
