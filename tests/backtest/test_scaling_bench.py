"""``python -m bench.scaling``: one line per policy and startup, and the verdict per model."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoscaler.backtest.frontier import Frontier, FrontierPoint, SweepPoint
from autoscaler.backtest.scoring import Aggregate
from bench import scaling
from tests.support.traces import write_daily_trace


def test_default_models_are_naive_and_the_newly_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        scaling, "forecaster_names", lambda: ["holt_winters", "naive", "pooled", "quantile_gbm"]
    )
    assert scaling.default_models() == ["naive", "pooled"]


def test_prints_a_line_per_policy_at_each_startup(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_daily_trace(tmp_path / "a.csv", days=3)
    write_daily_trace(tmp_path / "b.csv", days=3, seed=2)
    argv = [str(tmp_path), "--startup", "30", "300", "--models", "naive", "--quiet"]
    code = scaling.main([*argv, "--peers", "hpa", "hpa-on-forecast", "--targets", "0.5", "0.9"])
    assert code == 0
    captured = capsys.readouterr()
    out = captured.out
    assert out.startswith("2 trace(s): a, b")
    assert "## startup 30 s" in out and "## startup 300 s" in out
    for name in ("foresight:naive", "hpa@0.5", "hpa@0.9", "hpa-on-forecast@0.5"):
        rows = [line for line in out.splitlines() if line.startswith(name + " ")]
        assert len(rows) == 2, name  # one per startup
        viol, cost, per_day = (float(x) for x in rows[0].split()[1:])
        assert viol >= 0 and cost >= 1.0 and per_day >= 0
    # The verdict compares with the competitors only, not with hpa-on-forecast.
    verdicts = [line for line in out.splitlines() if line.startswith("startup")]
    assert len(verdicts) == 2
    assert all("hpa-on-forecast" not in v and "hpa@" in v for v in verdicts)
    assert "CPU-s" in captured.err


def test_jobs_change_no_figure(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write_daily_trace(tmp_path / "a.csv", days=3)
    write_daily_trace(tmp_path / "b.csv", days=3, seed=2)
    argv = [str(tmp_path), "--startup", "60", "--models", "naive", "--quiet", "--peers", "hpa"]

    def run(jobs: str) -> str:
        assert scaling.main([*argv, "--targets", "0.7", "--jobs", jobs]) == 0
        return capsys.readouterr().out

    assert run("2") == run("1")


def _point(family: str, knob: str, value: float, viol: float, cost: float) -> FrontierPoint:
    name = f"foresight:{family}@{value}" if knob == "quantile" else f"{family}@{value}"
    return FrontierPoint(
        SweepPoint(family, knob, value, name, None),
        Aggregate(traces=1, violation_pct=viol, unserved_pct=0.0, cost_vs_oracle=cost, actions=0),
    )


def test_the_verdict_compares_with_each_peers_best_and_the_cheapest_setting() -> None:
    frontier = Frontier(
        [
            _point("naive", "quantile", 0.997, 0.1, 1.6),
            _point("hpa", "target", 0.5, 0.3, 2.3),  # hpa's best: its fewest violations
            _point("hpa", "target", 0.9, 2.5, 1.15),  # the cheapest setting of any
            _point("ehpa", "target", 0.5, 0.2, 2.5),  # the fewest of all the competitors
            _point("hpa-on-forecast", "target", 0.9, 0.05, 1.0),  # foresight's own forecast
        ],
        ["a"],
    )
    [line] = scaling.verdicts(frontier)
    assert "fewest of the competitors ehpa@0.5 0.200% (better)" in line
    assert "the cheapest best setting hpa@0.5 2.300 (better)" in line
    assert "the cheapest setting of any hpa@0.9 1.150 (WORSE)" in line
