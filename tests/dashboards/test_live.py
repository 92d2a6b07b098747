"""Every dashboard query against a real Prometheus scraping foresight on a simulated cluster.

The collectors run against the simulator for a few virtual minutes (a CronJob fires, a
leaking container is OOM-killed); then a real Prometheus (Debian package) scrapes foresight's
/metrics for a few real seconds. Each target of each dashboard, with its template variables
set to values the variable's own query offers, must return data; the cost panels must agree
with ``foresight cost`` reading the same Prometheus.

The autoscaler controller and the alert engine are not part of this rig: a stand-in collector
(``ControllerAndAlertsStandIn``) exports their documented series so that their panels are
checked against the names and labels they promise.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import dashboards
from autoscaler.cli.main import main
from autoscaler.cost.exporter import register_cost_metrics
from autoscaler.cost.inputs import snapshot_from_cluster
from autoscaler.cost.service import load_report
from autoscaler.cost.settings import CostSettings
from autoscaler.cost.sources import PrometheusSeries
from autoscaler.service import metrics_app
from collectors.prometheus_source import PrometheusSource
from dashboards.lint import fill, panels
from runtime.backoff import Backoff
from runtime.clock import RealClock, VirtualClock
from runtime.families import FamiliesCollector
from simulator.background import BackgroundCluster
from simulator.scenario import parse_scenario
from tests.support.collection import collecting
from tests.support.external import require_binary
from tests.support.prometheus import free_port, running_prometheus
from tsdb import Store, StoreSettings


@pytest.fixture(autouse=True)
def _prometheus_installed() -> None:
    # Before the simulated cluster is built: without Prometheus it would be built for nothing.
    require_binary("prometheus")


SCENARIO = """
name: dashboards
seed: 5
tick: 5s
nodes:
  - {name: node, count: 2, cpu: "4", memory: 8Gi, instanceType: sim.large}
  - {name: spot, cpu: "4", memory: 8Gi, labels: {karpenter.sh/capacity-type: spot}}
namespaces: [shop]
workloads:
  - name: web
    namespace: shop
    replicas: 3
    requests: {cpu: 500m, memory: 128Mi, ephemeral-storage: 1Gi}
    limits: {cpu: "1", memory: 256Mi}
    startupSeconds: 5
    load: {pattern: constant, peak: 1.2, noise: 0}
    memory: {base: 100Mi, perCore: 0, leakPerHour: 4Gi}
  - name: db
    namespace: shop
    kind: StatefulSet
    replicas: 1
    container: postgres
    requests: {cpu: "1", memory: 1Gi}
    limits: {memory: 2Gi}
    startupSeconds: 5
    load: {pattern: constant, peak: 0.4, noise: 0}
    memory: {base: 600Mi, perCore: 0}
  - name: report
    namespace: shop
    kind: CronJob
    schedule: "* * * * *"
    jobSeconds: 20s
    requests: {cpu: 250m, memory: 64Mi}
    startupSeconds: 2
    load: {pattern: constant, peak: 0.2, noise: 0}
"""
# Values chosen for the template variables; each must be one its variable's query offers.
CHOSEN = {
    "cluster": "sim",
    "namespace": "shop",
    "workload": "web",
    "autoscaler": "web",
    "severity": "critical",
    "receiver": "ops",
}
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}


class ControllerAndAlertsStandIn(Collector):
    """STAND-IN for the controller's and the alert engine's metrics (documented names and
    labels), until both run in this rig. Counters grow at every scrape."""

    def __init__(self) -> None:
        self._scrapes = itertools.count(1)

    def collect(self) -> Iterator[Metric]:
        n = float(next(self._scrapes))
        pas = {"namespace": "shop", "autoscaler": "web"}

        def gauge(name: str, value: float, **labels: str) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, "stand-in", labels=[*pas, *labels])
            family.add_metric([*pas.values(), *labels.values()], value)
            return family

        yield gauge(
            "foresight_autoscaler_info", 1, target_kind="Deployment", target="web", mode="Auto"
        )
        yield gauge("foresight_autoscaler_load", 1.2)
        forecast = GaugeMetricFamily(
            "foresight_autoscaler_forecast", "stand-in", labels=[*pas, "quantile"]
        )
        for quantile, value in (("0.1", 1.0), ("0.5", 1.3), ("0.9", 1.7)):
            forecast.add_metric([*pas.values(), quantile], value)
        yield forecast
        for name, value in (("current", 3), ("desired", 4), ("min", 2), ("max", 10)):
            yield gauge(f"foresight_autoscaler_{name}_replicas", value)
        yield gauge("foresight_autoscaler_recommended_cpu_cores", 0.3, container="app")
        yield gauge("foresight_autoscaler_recommended_memory_bytes", 200 * 2**20, container="app")
        yield gauge("foresight_autoscaler_forecast_error_ratio", 0.12)
        decisions = CounterMetricFamily(
            "foresight_autoscaler_decisions", "stand-in", labels=[*pas, "direction", "reason"]
        )
        decisions.add_metric([*pas.values(), "up", "forecast above capacity"], n)
        decisions.add_metric([*pas.values(), "none", "within tolerance"], 3 * n)
        yield decisions
        conditions = GaugeMetricFamily(
            "foresight_autoscaler_condition", "stand-in", labels=[*pas, "condition", "status"]
        )
        for condition, status in (("ForecastReady", "True"), ("ScalingLimited", "False")):
            conditions.add_metric([*pas.values(), condition, status], 1)
        yield conditions
        leader = GaugeMetricFamily("foresight_leader", "stand-in", labels=["identity"])
        leader.add_metric(["foresight-0"], 1)
        yield leader
        alerts = GaugeMetricFamily(
            "foresight_alerts", "stand-in", labels=["alertname", "severity", "state"]
        )
        alerts.add_metric(["NodeNotReady", "critical", "firing"], 1)
        alerts.add_metric(["PodCrashLooping", "critical", "pending"], 2)
        yield alerts
        sent = CounterMetricFamily(
            "foresight_notifications", "stand-in", labels=["receiver", "outcome"]
        )
        for outcome, per_scrape in (
            ("sent", 3),
            ("failed", 1),
            ("rejected", 1),
            ("dead_lettered", 1),
        ):
            sent.add_metric(["ops", outcome], per_scrape * n)
        yield sent
        outbox = GaugeMetricFamily(
            "foresight_notification_outbox_size", "stand-in", labels=["receiver"]
        )
        outbox.add_metric(["ops"], 4)
        yield outbox


@dataclass
class Live:
    prometheus: str
    settings: CostSettings


@pytest.fixture
async def exporter(tmp_path: Path) -> AsyncIterator[str]:
    start = RealClock().now()  # Prometheus stamps with the wall clock; keep times close to it
    clock = VirtualClock(start=start, speed=None, autoadvance=False)
    store = Store(StoreSettings(), clock, persistent=False)
    with BackgroundCluster(parse_scenario(SCENARIO, "dashboards.yaml"), clock) as sim:
        async with collecting(sim, store, tmp_path / "sim.kubeconfig", start) as c:
            # Five virtual minutes: jobs run and finish, the leaking web pods are OOM-killed.
            for _ in range(20):
                await c.cycle.run_once()
                await asyncio.to_thread(sim.advance, 15)
            await c.cycle.run_once()
            await asyncio.sleep(0.5)  # let the last watch events land in the model
            registry = CollectorRegistry()
            registry.register(FamiliesCollector(c.cycle.families))
            register_cost_metrics(
                registry,
                lambda: snapshot_from_cluster(c.watcher.model, c.kubelets.latest, CostSettings()),
                CostSettings(),
            )
            registry.register(ControllerAndAlertsStandIn())
            runner = web.AppRunner(metrics_app(registry), access_log=None, handle_signals=False)
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            yield f"127.0.0.1:{port}"
            await runner.cleanup()
    store.close()


@pytest.fixture
def prometheus(exporter: str, tmp_path: Path) -> Iterator[str]:
    # honor_labels: foresight re-exports cluster objects whose labels (job, namespace, pod)
    # must not be renamed to exported_*; the cluster label is what a multi-cluster setup adds.
    config = (
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: foresight\n    honor_labels: true\n"
        f"    static_configs: [{{targets: ['{exporter}'], labels: {{cluster: sim}}}}]\n"
    )
    with running_prometheus(tmp_path, config) as url:
        yield url


async def _query(client: httpx.AsyncClient, url: str, expr: str) -> list[dict[str, object]]:
    response = await client.get(f"{url}/api/v1/query", params={"query": expr})
    body = response.json()
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, object]] = body["data"]["result"]
    return result


async def _wait_for_scrapes(client: httpx.AsyncClient, url: str, scrapes: int) -> None:
    """Real time: Prometheus is a real server scraping every second."""
    for _ in range(300):
        try:
            rows = await _query(client, url, 'count_over_time(up{job="foresight"}[1m])')
            if rows and float(rows[0]["value"][1]) >= scrapes:  # type: ignore[index]
                return
        except (httpx.TransportError, ValueError, AssertionError):
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("Prometheus did not scrape foresight")


_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$", re.DOTALL)


async def _variable_values(
    client: httpx.AsyncClient, url: str, definition: str, chosen: dict[str, str]
) -> set[str]:
    match = _LABEL_VALUES.match(definition)
    assert match, definition
    selector, label = fill(match.group(1), chosen), match.group(2)
    response = await client.get(f"{url}/api/v1/series", params={"match[]": selector})
    return {s[label] for s in response.json()["data"] if label in s}


async def test_dashboards_return_data_and_cost_panels_agree_with_cli(
    prometheus: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # One rig for both checks: starting the simulator and Prometheus is most of the time.
    await _every_dashboard_target_returns_data(prometheus)
    await _cost_panels_agree_with_foresight_cost(prometheus, capsys)


async def _every_dashboard_target_returns_data(prometheus: str) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        await _wait_for_scrapes(client, prometheus, 4)
        web_nodes = await _query(client, prometheus, 'foresight_pod_owner{workload="web"}')
        node = str(web_nodes[0]["metric"]["node"])  # type: ignore[index]
        empty: list[str] = []
        for name, data in dashboards.build_all().items():
            chosen = {**BUILTINS, "node": node}
            for variable in data["templating"]["list"]:
                if variable["type"] != "query":
                    continue
                offered = await _variable_values(client, prometheus, variable["definition"], chosen)
                value = CHOSEN.get(variable["name"], node)
                assert value in offered, (name, variable["name"], offered)
                chosen[variable["name"]] = value
            for panel in panels(data):
                for target in panel.get("targets", []):
                    expr = fill(target["expr"], chosen)
                    if not await _query(client, prometheus, expr):
                        empty.append(f"{name}: {panel['title']} / {target['refId']}: {expr}")
        assert empty == [], "targets without data:\n" + "\n".join(empty)


async def _cost_panels_agree_with_foresight_cost(
    prometheus: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        by_namespace = {
            str(r["metric"].get("namespace")): float(r["value"][1])  # type: ignore[union-attr,index]
            for r in await _query(client, prometheus, "sum by (namespace) (foresight_cost_hourly)")
        }
        [[_, idle]] = [
            r["value"] for r in await _query(client, prometheus, "sum(foresight_cost_idle_hourly)")
        ]  # type: ignore[misc]
        clock = RealClock()
        source = PrometheusSource(client, prometheus, clock, Backoff(0.1, 1, attempts=2))
        report = await load_report(
            PrometheusSeries(source, prometheus), "namespace", clock.now(), 5.0, CostSettings(), 1.0
        )
    rows = {r.name: r for r in report.rows}
    assert by_namespace.keys() == rows.keys() - {"__idle__"}
    for namespace, hourly in by_namespace.items():
        assert rows[namespace].total_hourly == pytest.approx(hourly, rel=0.01), namespace
    assert rows["__idle__"].total_hourly == pytest.approx(float(idle), rel=0.01)
    # The command line says the same.
    code = await asyncio.to_thread(
        main, ["cost", "--source", prometheus, "--window", "5s", "--step", "1s", "--format", "json"]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    cli = {r["name"]: r["total_hourly"] for r in data["rows"]}
    for namespace, hourly in by_namespace.items():
        assert cli[namespace] == pytest.approx(hourly, rel=0.01)
