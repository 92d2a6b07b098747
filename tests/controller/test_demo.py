"""``foresight demo`` end to end, shortened: the command, its outputs and its summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoscaler.cli.main import main
from tests.support.traces import write_daily_trace

EXAMPLE = Path(__file__).parents[2] / "examples" / "scenarios" / "shop-autoscaled.yaml"
OUTPUTS = ("summary.json", "events.jsonl", "alerts.jsonl", "report.png", "dashboards", "data")

REQUIRED = (
    "scaling_actions",
    "violation_pct",
    "cost_replica_hours",
    "hpa_violation_pct",
    "hpa_cost_replica_hours",
    "live_violation_pct",
    "live_cost_replica_hours",
    "alerts_delivered",
    "recommendations",
)


def test_demo_writes_its_summary_report_and_dashboards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--hours", "2"]) == 0
    printed = capsys.readouterr().out
    assert "2 simulated hours" in printed and "HPA 70 %" in printed
    assert "foresight and the HPA both replayed" in printed and "foresight live" in printed
    summary = json.loads((out / "summary.json").read_text())
    for key in REQUIRED:
        assert key in summary, key
    # Like with like: the headline figures of both sides come from replays of one load.
    assert summary["comparison"] == "replayed"
    for row in (summary["workloads"][k] for k in ("shop/frontend", "shop/api")):
        assert row["cost_replica_hours"] > 0 and row["live_cost_replica_hours"] > 0
        # The replay predicts the live run's cost (the parity benchmark checks it closely).
        assert abs(row["cost_replica_hours"] / row["live_cost_replica_hours"] - 1) < 0.15
    assert summary["scaling_actions"] >= 1
    assert summary["reconcile_errors"] == 0
    scored = {k for k, row in summary["workloads"].items() if "violation_pct" in row}
    assert scored == {"shop/frontend", "shop/api"}
    assert set(summary["workloads"]) == scored | {"batch/queue-worker", "shop/postgres"}
    worker = summary["workloads"]["batch/queue-worker"]
    assert worker["resizes"] >= 1
    memory = worker["requests"]["worker"]["memory"]
    assert memory["min"] < memory["max"]  # resized in place as it leaked
    assert {r["autoscaler"] for r in summary["recommendations"]} >= {"shop/postgres"}
    assert summary["cost"]["cluster_hourly"] > 0
    assert (out / "report.png").stat().st_size > 10_000
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events and all(e["reason"] for e in events)
    assert len(list((out / "dashboards").glob("*.json"))) == 6


def test_demo_replays_a_recorded_trace(tmp_path: Path) -> None:
    trace = write_daily_trace(tmp_path / "daily.csv", days=3, step_seconds=60)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--hours", "1", "--trace", str(trace)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["workloads"]["shop/frontend"]["cost_replica_hours"] > 0


def test_demo_rejects_a_missing_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--trace", str(tmp_path / "nope.csv")]) == 1
    assert "nope.csv: no such file" in capsys.readouterr().err


def test_demo_runs_a_scenario_file_with_its_autoscalers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--scenario", str(EXAMPLE), "--out", str(out), "--hours", "1"]) == 0
    printed = capsys.readouterr().out
    assert "1 simulated hours" in printed and "shop/queue-worker" in printed
    for name in OUTPUTS:
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "shop-autoscaled"
    assert summary["reconcile_errors"] == 0
    web, worker = summary["workloads"]["shop/web"], summary["workloads"]["shop/queue-worker"]
    # Scored against the HPA: the one horizontally scaled Deployment.
    assert "hpa_violation_pct" in web and "hpa_violation_pct" not in worker
    assert 2 <= web["replicas"]["min"] <= web["replicas"]["max"] <= 40
    assert web["replicas"]["max"] > 3  # scaled up from the scenario's 3 for the afternoon
    assert web["requests"]["app"]["cpu"] == {"min": 0.25, "max": 0.25}
    assert worker["resizes"] >= 1 and worker["replicas"] == {"min": 1, "max": 1}
    memory = worker["requests"]["worker"]["memory"]
    assert memory["min"] < memory["max"] <= 4 * 2**30
    # The scenario's node failure reached the alert receiver.
    assert "NodeNotReady" in summary["alerts_firing_by_name"]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert {e["autoscaler"] for e in events} == {"shop/web", "shop/queue-worker"}


def test_demo_names_the_line_of_a_bad_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "nodes: [{name: n}]\nautoscalers:\n  - name: web\n    spec: {mode: Auto}\n",
        encoding="utf-8",
    )
    assert main(["demo", "--scenario", str(bad), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml:4" in err and "autoscalers.0.spec" in err and "targetRef" in err
    assert main(["demo", "--scenario", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: no such file" in capsys.readouterr().err
