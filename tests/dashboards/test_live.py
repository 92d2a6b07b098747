"""Every dashboard query against a real Prometheus scraping foresight after a demo run.

``foresight demo`` runs a scenario for half a simulated hour: the collectors, the controller
(with PredictiveAutoscalers of its own, two of them on one StatefulSet: a conflict), the rule
engine and webhook delivery, on a virtual clock; a CronJob fires every minute, the leaking web
pods are OOM-killed. Then, with the demo's service still open, a real Prometheus (Debian
package) scrapes its /metrics for a few real seconds. Every target of every panel, with its
template variables set to values the variable's own query offers, must return data, except
the few listed in ``MAY_BE_EMPTY`` with the reason; with every variable at "All" each query
must still evaluate (duplicated autoscaler series must not break a join). The cost panels
must agree with ``foresight cost`` reading the same Prometheus.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

import dashboards
from autoscaler.cli.main import main
from autoscaler.cost.service import load_report
from autoscaler.cost.settings import CostSettings
from autoscaler.cost.sources import PrometheusSeries
from autoscaler.demo.run import DemoOptions, run_demo
from autoscaler.service import Service
from collectors.prometheus_source import PrometheusSource
from dashboards.lint import fill, panels
from runtime.backoff import Backoff
from runtime.clock import RealClock
from tests.support.external import require_binary
from tests.support.prometheus import running_prometheus


@pytest.fixture(autouse=True)
def _prometheus_installed() -> None:
    # Before the demo runs: without Prometheus it would run for nothing.
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
autoscalers:
  - name: web
    namespace: shop
    spec:
      targetRef: {kind: Deployment, name: web}
      mode: Auto
      horizontal:
        minReplicas: 2
        maxReplicas: 10
        metric: {type: CPU, targetUtilization: 50}
      vertical: {updateMode: "Off"}
      forecast: {horizonSeconds: 60}
  # Two on one StatefulSet: both report the conflict, and the dashboards must not break.
  - name: db
    namespace: shop
    spec:
      targetRef: {kind: StatefulSet, name: db}
      mode: Recommend
      vertical: {updateMode: "Off"}
  - name: db-shadow
    namespace: shop
    spec:
      targetRef: {kind: StatefulSet, name: db}
      mode: Recommend
      vertical: {updateMode: "Off"}
"""
# Values chosen for the template variables; each must be one its variable's query offers.
CHOSEN = {
    "cluster": "sim",
    "namespace": "shop",
    "workload": "web",
    "autoscaler": "web",
    "severity": "warning",
    "receiver": "demo",
}
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
# Panels on what foresight reads from cAdvisor and the summary API (simulator kubelets'
# /metrics/cadvisor and /stats/summary): each must have been checked and returned data.
KUBELET_STATS_PANELS = {
    "foresight-workloads.json": {
        "CPU throttling",
        "Network: received and transmitted",
        "Network errors and drops",
        "Disk I/O",
        "Ephemeral storage used",
        "Volumes: used / capacity",
    },
    "foresight-nodes.json": {
        "Filesystems used",
        "Ephemeral storage used by pods",
        "Pod network traffic",
        "Pod disk I/O",
        "Throttled containers",
    },
}
# Targets that may come back empty, as "dashboard: panel / refId": each is a condition that
# did not happen in this run, not a query that cannot find its data.
MAY_BE_EMPTY = {
    "foresight-alerts.json: Pending by severity / A": "no alert is between its condition and "
    "its `for` when the run ends: those that fired did so at once or have fired already",
}


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[str]:
    scenario = tmp_path / "dashboards.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    served: asyncio.Queue[str] = asyncio.Queue()
    done = asyncio.Event()

    async def serve(service: Service) -> None:
        port = await service.serve_http()
        # honor_labels: foresight re-exports cluster objects whose labels (job, namespace,
        # pod) must not be renamed to exported_*; the cluster label is what a multi-cluster
        # setup adds.
        config = (
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: foresight\n    honor_labels: true\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{port}'], labels: {{cluster: sim}}}}]\n"
        )
        with ExitStack() as stack:
            # Prometheus starts in a thread: this loop serves the /metrics it scrapes.
            url = await asyncio.to_thread(
                stack.enter_context, running_prometheus(tmp_path / "prometheus", config)
            )
            await served.put(url)
            await done.wait()

    options = DemoOptions(
        out=tmp_path / "demo",
        hours=0.5,
        backfill_days=1,
        scenario=scenario,
        progress=lambda _: None,
        inspect=serve,
    )
    demo = asyncio.create_task(run_demo(options))
    getting = asyncio.create_task(served.get())
    await asyncio.wait({demo, getting}, return_when=asyncio.FIRST_COMPLETED)
    if demo.done():
        getting.cancel()
        demo.result()  # the demo failed before serving: its error
        raise AssertionError("the demo ended without serving /metrics")
    try:
        yield getting.result()
    finally:
        done.set()
        await demo


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
        with_data: set[tuple[str, str]] = set()
        checked = 0
        for name, data in dashboards.build_all().items():
            chosen = {**BUILTINS, "node": node}
            every = dict(BUILTINS)
            for variable in data["templating"]["list"]:
                if variable["type"] != "query":
                    continue
                offered = await _variable_values(client, prometheus, variable["definition"], chosen)
                value = CHOSEN.get(variable["name"], node)
                assert value in offered, (name, variable["name"], offered)
                chosen[variable["name"]] = value
                every[variable["name"]] = ".*"
            for panel in panels(data):
                for target in panel.get("targets", []):
                    where = f"{name}: {panel['title']} / {target['refId']}"
                    checked += 1
                    # "All" everywhere: every query must still evaluate (_query asserts it).
                    await _query(client, prometheus, fill(target["expr"], every))
                    expr = fill(target["expr"], chosen)
                    if await _query(client, prometheus, expr):
                        with_data.add((name, panel["title"]))
                    elif where not in MAY_BE_EMPTY:
                        empty.append(f"{where}: {expr}")
        assert checked > 100  # every panel of every dashboard, not a sample
        assert empty == [], "targets without data:\n" + "\n".join(empty)
        for name, titles in KUBELET_STATS_PANELS.items():
            assert {t for n, t in with_data if n == name} >= titles, name


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
