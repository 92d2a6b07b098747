"""Structural checks of every dashboard, and that the checks catch what they should."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import dashboards
from autoscaler.cli.main import main
from dashboards.core import DATASOURCE
from dashboards.lint import PANEL_TYPES, fill, panels, parse_error, problems, variables_in

ALL = dashboards.build_all()
NAMES = sorted(ALL)


def test_every_dashboard_passes_the_checks() -> None:
    found = [p for name, data in ALL.items() for p in problems(name, data)]
    assert found == []


@pytest.mark.parametrize("name", NAMES)
def test_dashboard_is_modern_and_stable(name: str) -> None:
    data = ALL[name]
    assert data["uid"] == name.removesuffix(".json")
    assert data["schemaVersion"] >= 36
    assert data["id"] is None
    assert "rows" not in data
    assert dashboards.build_all()[name] == data  # deterministic, so uids and ids are stable
    json.dumps(data)
    assert data["links"] and data["links"][0]["tags"] == ["foresight"]
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "cluster" in variables


@pytest.mark.parametrize("name", NAMES)
def test_panels_are_react_with_object_datasources_units_and_ids(name: str) -> None:
    ids = []
    for panel in panels(ALL[name]):
        ids.append(panel["id"])
        if panel["type"] == "row":
            continue
        assert panel["type"] in PANEL_TYPES, panel["title"]
        assert panel["datasource"] == DATASOURCE
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["value"] is None
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE
            assert (
                parse_error(
                    fill(target["expr"], {"__rate_interval": "5m", "__range": "1h"} | _any())
                )
                is None
            )
    assert len(ids) == len(set(ids))


def _any() -> dict[str, str]:
    return dict.fromkeys(
        ("cluster", "namespace", "workload", "node", "autoscaler", "severity", "receiver"), ".*"
    )


def test_template_variables_are_wired_into_queries() -> None:
    wanted = {
        "foresight-cluster.json": {"cluster", "namespace"},
        "foresight-nodes.json": {"cluster", "node"},
        "foresight-workloads.json": {"cluster", "namespace", "workload"},
        "foresight-autoscaler.json": {"cluster", "namespace", "autoscaler"},
        "foresight-alerts.json": {"cluster", "severity", "receiver"},
        "foresight-cost.json": {"cluster", "namespace", "workload"},
    }
    for name, variables in wanted.items():
        used = set().union(
            *(variables_in(t["expr"]) for p in panels(ALL[name]) for t in p.get("targets", []))
        )
        assert variables <= used, (name, variables - used)


def test_no_angular_panel_anywhere() -> None:
    text = json.dumps(ALL)
    for angular in ('"graph"', '"singlestat"', '"grafana-piechart-panel"', '"table-old"'):
        assert f'"type": {angular}' not in text


def test_cost_dashboard_answers_the_cost_questions() -> None:
    titles = {p["title"] for p in panels(ALL["foresight-cost.json"])}
    for wanted in (
        "Cluster cost / month",
        "Idle cost / month",
        "Savings if recommendations applied / month",
        "Last day vs 7-day average",
        "Monthly cost by namespace",
        "Monthly cost by resource",
        "Cost by workload",
        "Cost by node",
    ):
        assert wanted in titles
    units = {
        p["fieldConfig"]["defaults"]["unit"]
        for p in panels(ALL["foresight-cost.json"])
        if p["type"] != "row"
    }
    assert "currencyUSD" in units
    assert "currencyEUR" in json.dumps(dashboards.build("cost", "EUR"))


def test_checks_catch_mistakes() -> None:
    data = copy.deepcopy(ALL["foresight-nodes.json"])
    real = [p for p in data["panels"] if p["type"] != "row"]
    real[0]["targets"][0]["expr"] = "sum(rate(foo[5m]"
    real[1]["type"] = "graph"
    real[2]["datasource"] = "Prometheus"
    real[3]["fieldConfig"]["defaults"]["unit"] = ""
    real[4]["gridPos"] = dict(real[5]["gridPos"])
    real[5]["id"] = real[6]["id"]
    real[6]["targets"][0]["expr"] = 'up{job=~"$nope"}'
    real[7]["gridPos"]["w"] = 30
    found = "\n".join(problems("n.json", data))
    assert "expr does not parse" in found
    assert "panel type 'graph' is not a React panel" in found
    assert "datasource is 'Prometheus'" in found
    assert "no unit" in found
    assert "overlaps" in found
    assert "id also used by" in found
    assert "variable $nope is used but not defined" in found
    assert "is outside 24 columns" in found


def test_unknown_dashboard_lists_valid_names() -> None:
    with pytest.raises(dashboards.UnknownDashboard, match="valid: cluster, nodes, workloads"):
        dashboards.build("costs")


def test_cli_writes_one_file_per_dashboard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboards", "--out", str(tmp_path / "out"), "--check"]) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == NAMES
    written = json.loads((tmp_path / "out" / "foresight-cost.json").read_text())
    assert written == ALL["foresight-cost.json"]
    assert "wrote 6 dashboards" in capsys.readouterr().err
