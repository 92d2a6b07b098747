"""Snapshots from series, the scrape-time collector, the formats and ``foresight cost``."""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from autoscaler.cli.main import main
from autoscaler.cost.exporter import register_cost_metrics
from autoscaler.cost.formats import render
from autoscaler.cost.inputs import snapshot_from_cluster, snapshot_from_series
from autoscaler.cost.report import Moment, summarise
from autoscaler.cost.service import load_report
from autoscaler.cost.settings import CostSettings, NodePriceOverride
from autoscaler.cost.sources import MetricsPage
from autoscaler.service import metrics_app
from collectors.cluster_model import ClusterModel
from collectors.kubelet import NodeUsageView
from collectors.state_metrics import cluster_families
from runtime.clock import VirtualClock
from runtime.families import FamiliesCollector
from tsdb import Store, StoreSettings

GIB = 2**30
CPU, MEM = 0.031611, 0.004237
NODE = {
    "metadata": {
        "name": "n1",
        "labels": {
            "node.kubernetes.io/instance-type": "m5.large",
            "karpenter.sh/capacity-type": "spot",
        },
    },
    "status": {
        "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
        "allocatable": {"cpu": "3900m", "memory": "15Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}],
    },
}


def _pod(name: str, phase: str, node: str = "n1", cpu: str = "1") -> dict[str, object]:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "ownerReferences": [{"kind": "StatefulSet", "name": "db", "controller": True}],
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "app", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}
            ],
        },
        "status": {"phase": phase},
    }


def _model() -> ClusterModel:
    model = ClusterModel()
    model.replace("Node", [NODE])
    model.replace(
        "Pod",
        [
            _pod("db-0", "Running"),
            _pod("db-1", "Pending", node=""),  # not scheduled: holds nothing
            _pod("old-0", "Succeeded", cpu="3"),  # finished: holds nothing
        ],
    )
    return model


LATEST = {"n1": NodeUsageView(0, 1.0, GIB, containers={("shop", "db-0", "app"): (0.5, 2 * GIB)})}
# m5.large has its own CPU price; the node is spot, so memory is at the spot price.
SETTINGS = CostSettings(
    node_overrides=(
        NodePriceOverride(
            match={"node.kubernetes.io/instance-type": "m5.large"}, cpu_core_hour=0.05
        ),
    )
)


def test_snapshot_from_cluster_keeps_running_scheduled_pods() -> None:
    snapshot = snapshot_from_cluster(_model(), LATEST, SETTINGS)
    [node] = snapshot.nodes
    assert (node.cpu_cores, node.memory_bytes) == (4, 16 * GIB)
    assert (node.prices.cpu_core_hour, node.prices.memory_gib_hour) == (0.05, 0.000892)
    [db] = snapshot.containers
    assert (db.workload_kind, db.workload, db.cpu_usage, db.memory_usage) == (
        "StatefulSet",
        "db",
        0.5,
        2 * GIB,
    )


def test_collector_exports_cost_at_scrape_time() -> None:
    registry = CollectorRegistry()
    register_cost_metrics(
        registry, lambda: snapshot_from_cluster(_model(), LATEST, SETTINGS), SETTINGS
    )
    labels = {"namespace": "shop", "workload_kind": "StatefulSet", "workload": "db"}
    value = registry.get_sample_value
    # 1 core requested at 0.05; 2 GiB used (over the 1 GiB request) at the spot price.
    assert value("foresight_cost_hourly", {**labels, "resource": "cpu"}) == pytest.approx(0.05)
    assert value("foresight_cost_hourly", {**labels, "resource": "memory"}) == pytest.approx(
        2 * 0.000892
    )
    assert value("foresight_cost_hourly", {**labels, "resource": "gpu"}) == 0
    assert value("foresight_cost_node_hourly", {"node": "n1", "resource": "cpu"}) == 0.2
    assert value("foresight_cost_idle_hourly", {"node": "n1", "resource": "cpu"}) == (
        pytest.approx(3 * 0.05)
    )
    assert value("foresight_cost_node_price", {"node": "n1", "resource": "cpu"}) == 0.05
    assert value("foresight_cost_price", {"resource": "cpu"}) == CPU


def _series(registry: CollectorRegistry) -> dict[str, list[tuple[Mapping[str, str], float]]]:
    out: dict[str, list[tuple[Mapping[str, str], float]]] = {}
    for family in registry.collect():
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _registry() -> CollectorRegistry:
    model = _model()
    registry = CollectorRegistry()
    registry.register(FamiliesCollector(lambda: cluster_families(model)))
    register_cost_metrics(
        registry, lambda: snapshot_from_cluster(model, LATEST, SETTINGS), SETTINGS
    )
    return registry


def test_snapshot_from_series_matches_the_live_one() -> None:
    # Usage is not in the cluster families; requests alone decide here.
    snapshot, recommendations = snapshot_from_series(_series(_registry()), CostSettings())
    [node] = snapshot.nodes
    # The running foresight's exported prices win over local settings (which lack overrides).
    assert node.prices.cpu_core_hour == 0.05
    [db] = snapshot.containers
    assert (db.pod, db.cpu_request, db.memory_request) == ("db-0", 1, GIB)
    assert recommendations == {}


def test_formats() -> None:
    snapshot = snapshot_from_cluster(_model(), LATEST, SETTINGS)
    report = summarise([Moment(snapshot)], "workload", 24, SETTINGS)
    data = json.loads(render(report, "json"))
    assert [r["name"] for r in data["rows"]] == ["shop/StatefulSet/db", "__idle__"]
    assert data["rows"][0]["window_cost"] == pytest.approx(24 * (0.05 + 2 * 0.000892))
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert rows[0]["workload"] == "shop/StatefulSet/db"
    table = render(report, "table")
    assert "shop/StatefulSet/db" in table and "__idle__" in table and "USD/month" in table
    with pytest.raises(ValueError, match=r"unknown format 'xml' \(valid: table, json, csv\)"):
        render(report, "xml")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def metrics_url() -> AsyncIterator[str]:
    runner = web.AppRunner(metrics_app(_registry()), access_log=None, handle_signals=False)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/metrics"
    await runner.cleanup()


async def test_report_from_a_metrics_page(metrics_url: str) -> None:
    async with httpx.AsyncClient() as client:
        report = await load_report(
            MetricsPage(client, metrics_url), "namespace", 1000.0, 1.0, CostSettings(), 1.0
        )
    rows = {r.name: r for r in report.rows}
    assert rows["shop"].hourly["cpu"] == pytest.approx(0.05)
    assert report.cluster_hourly == pytest.approx(4 * 0.05 + 16 * 0.000892)


def test_cli_reads_a_data_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    end = 1_750_000_000
    store = Store(StoreSettings(data_dir=tmp_path / "data"), VirtualClock(start=end))
    series = _series(_registry())
    for ts in range(end - 600, end + 1, 60):
        for name, samples in series.items():
            for labels, value in samples:
                store.append({**labels, "__name__": name}, ts * 1000, value)
    store.close()
    code = main(
        [
            "cost",
            "--data-dir",
            str(tmp_path / "data"),
            "--at",
            str(end),
            "--window",
            "10m",
            "--step",
            "1m",
            "--by",
            "node",
            "--format",
            "json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["samples"] == 11
    [row] = data["rows"]
    assert row["name"] == "n1"
    assert row["total_hourly"] == pytest.approx(4 * 0.05 + 16 * 0.000892)
    assert row["idle_hourly"] == pytest.approx(3 * 0.05 + 15 * 0.000892)


def test_cli_names_an_empty_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["cost", "--data-dir", str(tmp_path / "empty"), "--at", "1750000000"])
    assert code == 1
    assert "no node capacity found" in capsys.readouterr().err
