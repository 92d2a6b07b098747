"""``foresight demo`` end to end, shortened: the command, its outputs and its summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoscaler.cli.main import main
from tests.support.traces import write_daily_trace

REQUIRED = (
    "scaling_actions",
    "violation_pct",
    "cost_replica_hours",
    "hpa_violation_pct",
    "hpa_cost_replica_hours",
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
    summary = json.loads((out / "summary.json").read_text())
    for key in REQUIRED:
        assert key in summary, key
    assert summary["scaling_actions"] >= 1
    assert summary["reconcile_errors"] == 0
    assert set(summary["workloads"]) == {"shop/frontend", "shop/api"}
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
