"""The allocation maths on hand-computed cases."""

from __future__ import annotations

import json

import pytest

from autoscaler.cost.model import Container, Node, Recommendation, Snapshot, allocate, group, idle
from autoscaler.cost.pricing import HOURS_PER_MONTH, NodePrices, node_prices, storage_gib_hour
from autoscaler.cost.report import IDLE, Moment, summarise
from autoscaler.cost.settings import CostSettings, NodePriceOverride
from tests.support.external import require_data

GIB = 2**30
CPU, MEM = 0.031611, 0.004237
ON_DEMAND = NodePrices(CPU, MEM, 0.95)


def _container(ns: str, workload: str, node: str = "n1", **values: float) -> Container:
    return Container(ns, f"{workload}-1", "app", node, "Deployment", workload, **values)


def _snapshot(*containers: Container) -> Snapshot:
    return Snapshot((Node("n1", 4, 16 * GIB, 0, ON_DEMAND),), containers)


def test_defaults_are_opencosts() -> None:
    pricing = json.loads(require_data("k8s/opencost_default_pricing.json").read_text())
    settings = CostSettings()
    assert settings.cpu_core_hour == float(pricing["CPU"])
    assert settings.memory_gib_hour == float(pricing["RAM"])
    assert settings.gpu_hour == float(pricing["GPU"])
    assert settings.spot_cpu_core_hour == float(pricing["spotCPU"])
    assert settings.spot_memory_gib_hour == float(pricing["spotRAM"])
    # OpenCost stores storage per GiB-hour: 0.04 per GiB-month over a 730-hour month.
    assert storage_gib_hour(settings) == pytest.approx(float(pricing["storage"]), rel=1e-6)


def test_each_container_pays_max_of_request_and_usage() -> None:
    web = _container(
        "shop", "web", cpu_request=1, cpu_usage=0.5, memory_request=GIB, memory_usage=2 * GIB
    )
    batch = _container("batch", "etl", cpu_request=0.25, cpu_usage=1.5)
    allocation = allocate(_snapshot(web, batch), ON_DEMAND, 0.0)
    by_ns = group(allocation, "namespace", ON_DEMAND)
    # web: 1 core requested (usage 0.5) and 2 GiB used (request 1 GiB).
    assert by_ns["shop"].hourly["cpu"] == pytest.approx(1 * CPU)
    assert by_ns["shop"].hourly["memory"] == pytest.approx(2 * MEM)
    # etl: 1.5 cores used (request 0.25), no memory figure at all.
    assert by_ns["batch"].hourly["cpu"] == pytest.approx(1.5 * CPU)
    assert by_ns["batch"].hourly["memory"] == 0


def test_idle_is_node_cost_minus_allocated() -> None:
    web = _container(
        "shop", "web", cpu_request=1, cpu_usage=0.5, memory_request=GIB, memory_usage=2 * GIB
    )
    batch = _container("batch", "etl", cpu_request=0.25, cpu_usage=1.5)
    allocation = allocate(_snapshot(web, batch), ON_DEMAND, 0.0)
    [node] = allocation.nodes
    assert node.hourly["cpu"] == pytest.approx(4 * CPU)  # 0.126444
    assert node.hourly["memory"] == pytest.approx(16 * MEM)  # 0.067792
    # 4 cores − (1 + 1.5) allocated = 1.5 idle cores; 16 − 2 GiB = 14 idle GiB.
    assert idle(allocation) == pytest.approx({"cpu": 1.5 * CPU, "memory": 14 * MEM, "gpu": 0})


def test_idle_is_never_negative() -> None:
    greedy = _container("shop", "web", cpu_request=1, cpu_usage=6)
    allocation = allocate(_snapshot(greedy), ON_DEMAND, 0.0)
    assert idle(allocation)["cpu"] == 0


def test_gpus_and_storage_are_charged_by_request() -> None:
    node = Node("gpu-1", 8, 32 * GIB, 2, ON_DEMAND)
    trainer = _container("ml", "train", node="gpu-1", gpu_request=1, storage_request=10 * GIB)
    allocation = allocate(Snapshot((node,), (trainer,)), ON_DEMAND, 0.04 / 730)
    [cost] = allocation.containers
    assert cost.hourly["gpu"] == pytest.approx(0.95)
    assert cost.hourly["storage"] == pytest.approx(10 * 0.04 / 730)
    assert allocation.nodes[0].idle["gpu"] == pytest.approx(0.95)


def test_containers_on_unknown_nodes_use_default_prices_and_reserve_nothing() -> None:
    stray = _container("shop", "web", node="gone", cpu_request=2)
    allocation = allocate(_snapshot(stray), ON_DEMAND, 0.0)
    assert allocation.containers[0].hourly["cpu"] == pytest.approx(2 * CPU)
    assert idle(allocation)["cpu"] == pytest.approx(4 * CPU)


def test_spot_labels_and_overrides() -> None:
    settings = CostSettings(
        node_overrides=(
            NodePriceOverride(
                match={"node.kubernetes.io/instance-type": "m5.large"}, cpu_core_hour=0.048
            ),
            NodePriceOverride(
                match={"node.kubernetes.io/instance-type": "m5.large"}, cpu_core_hour=99
            ),
        )
    )
    on_demand = node_prices({}, settings)
    assert on_demand == NodePrices(CPU, MEM, 0.95)
    spot = node_prices({"karpenter.sh/capacity-type": "spot"}, settings)
    assert spot == NodePrices(0.006655, 0.000892, 0.95)
    # The first matching override wins; what it leaves unset comes from spot/on-demand.
    m5 = node_prices({"node.kubernetes.io/instance-type": "m5.large"}, settings)
    assert m5 == NodePrices(0.048, MEM, 0.95)
    m5_spot = node_prices(
        {"node.kubernetes.io/instance-type": "m5.large", "cloud.google.com/gke-spot": "true"},
        settings,
    )
    assert m5_spot == NodePrices(0.048, 0.000892, 0.95)


def test_invalid_spot_label_is_named() -> None:
    with pytest.raises(ValueError, match="spot label 'spot' must be key=value"):
        CostSettings(spot_labels=("spot",))


def test_report_averages_moments_and_adds_idle() -> None:
    web = _container("shop", "web", cpu_request=1)
    etl = _container("batch", "etl", cpu_request=2)
    moments = [Moment(_snapshot(web, etl)), Moment(_snapshot(web))]
    report = summarise(moments, "namespace", 2.0, CostSettings())
    rows = {r.name: r for r in report.rows}
    assert rows["shop"].hourly["cpu"] == pytest.approx(CPU)
    assert rows["batch"].hourly["cpu"] == pytest.approx(CPU)  # 2 cores for half the window
    assert rows["batch"].window_cost == pytest.approx(2 * CPU)
    assert rows["shop"].monthly == pytest.approx(HOURS_PER_MONTH * CPU)
    # Idle: 4 cores − 3 then 4 − 1 → 2 cores on average, plus all the memory.
    assert rows[IDLE].hourly["cpu"] == pytest.approx(2 * CPU)
    assert rows[IDLE].hourly["memory"] == pytest.approx(16 * MEM)
    assert report.rows[-1].name == IDLE
    assert sum(r.total_hourly for r in report.rows) == pytest.approx(report.cluster_hourly)
    assert report.cluster_hourly == pytest.approx(4 * CPU + 16 * MEM)


def test_report_by_node_and_efficiency() -> None:
    web = _container(
        "shop", "web", cpu_request=2, cpu_usage=1, memory_request=GIB, memory_usage=GIB / 4
    )
    report = summarise([Moment(_snapshot(web))], "node", 1.0, CostSettings())
    [row] = report.rows
    assert row.name == "n1"
    assert row.total_hourly == pytest.approx(4 * CPU + 16 * MEM)
    assert row.idle_hourly == pytest.approx(2 * CPU + 15 * MEM)
    assert row.cpu_efficiency == pytest.approx(0.5)
    assert row.memory_efficiency == pytest.approx(0.25)


def test_savings_of_recommendations() -> None:
    web = _container("shop", "web", cpu_request=1, memory_request=2 * GIB)
    recs = {("shop", "web", "app"): Recommendation(cpu_cores=0.25, memory_bytes=3 * GIB)}
    report = summarise([Moment(_snapshot(web), recs)], "workload", 1.0, CostSettings())
    row = next(r for r in report.rows if r.name == "shop/Deployment/web")
    # 0.75 cores fewer, 1 GiB more.
    assert row.savings_hourly == pytest.approx(0.75 * CPU - 1 * MEM)
    assert report.savings_hourly == pytest.approx(row.savings_hourly)
