"""``foresight backtest --frontier``: the sweep, its sanity, the table, JSON and plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoscaler.backtest.frontier import (
    Frontier,
    FrontierPoint,
    SweepPoint,
    format_frontier,
    run_frontier,
    sweep,
)
from autoscaler.backtest.policies import PolicyError
from autoscaler.backtest.run import run_suite
from autoscaler.backtest.scoring import Aggregate
from autoscaler.backtest.world import WorldConfig
from autoscaler.cli.main import main
from tests.support.traces import write_daily_trace


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_daily_trace(tmp_path_factory.mktemp("frontier") / "daily.csv", days=4)


def test_sweep_names_and_knobs() -> None:
    points = sweep(["foresight", "hpa", "ehpa@0.7"], quantiles=[0.99, 0.997], targets=[0.5, 0.9])
    assert [(p.family, p.knob, p.value, p.name) for p in points] == [
        ("foresight", "quantile", 0.99, "foresight~0.99"),
        ("foresight", "quantile", 0.997, "foresight~0.997"),
        ("hpa", "target", 0.5, "hpa@0.5"),
        ("hpa", "target", 0.9, "hpa@0.9"),
        ("ehpa", "target", 0.5, "ehpa@0.5"),
        ("ehpa", "target", 0.9, "ehpa@0.9"),
    ]
    assert points[1].forecast is not None and points[1].forecast.quantile == 0.997
    with pytest.raises(PolicyError, match="has no knob"):
        sweep(["oracle"])
    with pytest.raises(PolicyError, match="must be a number in"):
        sweep(["hpa"], targets=[1.5])
    with pytest.raises(PolicyError, match=r"quantile 1\.5"):
        sweep(["foresight"], quantiles=[1.5])


def test_frontiers_trade_violations_for_cost(trace: Path) -> None:
    # More headroom costs more and violates no more: a lower target for the HPA-based
    # policies, a higher quantile for foresight.
    points = sweep(
        ["foresight", "hpa", "hpa-on-forecast"], quantiles=[0.9, 0.999], targets=[0.4, 0.9]
    )
    frontier = run_frontier([trace], WorldConfig(startup_seconds=120), points)
    for family in ("foresight", "hpa", "hpa-on-forecast"):
        curve = frontier.curve(family)
        lean, ample = (curve[0], curve[1]) if family == "foresight" else (curve[1], curve[0])
        assert ample.aggregate.cost_vs_oracle > lean.aggregate.cost_vs_oracle, family
        assert ample.aggregate.violation_pct <= lean.aggregate.violation_pct, family
    assert frontier.traces == ["daily"]
    text = format_frontier(frontier)
    assert "hpa-on-forecast target" in text and "actions/day" in text


def _point(family: str, value: float, viol: float, cost: float) -> FrontierPoint:
    a = Aggregate(1, viol, viol, cost, 10.0, 10.0)
    return FrontierPoint(SweepPoint(family, "target", value, f"{family}@{value}", None), a)


def test_dominance_is_fewer_violations_at_no_more_cost_or_cheaper_at_no_more_violations() -> None:
    frontier = Frontier(
        points=[
            _point("a", 0.5, 1.0, 2.0),
            _point("a", 0.9, 3.0, 1.5),
            _point("b", 0.5, 0.9, 2.0),  # beats a@0.5
            _point("b", 0.9, 3.0, 1.4),  # beats a@0.9
            _point("c", 0.5, 0.1, 9.0),  # beats nobody's cost, nobody beats it
        ],
        traces=["t"],
    )
    assert frontier.dominated_by("a") == ["b"]
    assert frontier.dominated_by("b") == []
    assert frontier.dominated_by("c") == []
    text = format_frontier(frontier)
    assert "a: every point dominated by b" in text
    assert "c: not dominated" in text
    assert frontier.as_json()["dominated_by"] == {"a": ["b"], "b": [], "c": []}


def test_cli_frontier_json_and_plot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trace: Path
) -> None:
    plot = tmp_path / "frontier.png"
    argv = ["backtest", "--trace", str(trace), "--frontier", "--policy", "hpa", "phpa-lin@0.7"]
    code = main([*argv, "--targets", "0.5", "0.9", "--json", "--plot", str(plot)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert [(p["policy"], p["value"]) for p in out["points"]] == [
        ("hpa", 0.5),
        ("hpa", 0.9),
        ("phpa-lin", 0.5),
        ("phpa-lin", 0.9),
    ]
    for p in out["points"]:
        assert {"violation_pct", "cost_vs_oracle", "actions_per_day", "knob"} <= set(p)
    assert set(out["dominated_by"]) == {"hpa", "phpa-lin"}
    assert plot.stat().st_size > 10_000
    assert main(["backtest", "--trace", str(trace), "--frontier", "--policy", "static"]) == 1
    assert "has no knob" in capsys.readouterr().err


def test_help_explains_the_peers_and_the_frontier(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside hyphenated names
    with pytest.raises(SystemExit):
        main(["backtest", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in (
        "ehpa@T, Crane's Effective HPA",
        "phpa-hw@T and phpa-lin@T",
        "hpa-on-forecast@T, a plain HPA whose only metric is foresight's forecast peak",
        "--frontier",
        "--quantiles",
        "--targets",
        "foresight:MODEL",
        "whether foresight has fewer violations than each competitor's best setting",
    ):
        assert phrase in text, phrase


def test_shared_forecasts_change_no_figure(trace: Path) -> None:
    # The frontier shares hpa-on-forecast's forecasts across targets of one trace; each point
    # must score exactly as a replay of its own.
    config = WorldConfig(startup_seconds=60)
    points = sweep(["hpa-on-forecast"], targets=[0.5, 0.8])
    frontier = run_frontier([trace], config, points)
    alone = run_suite([trace], config, ["hpa-on-forecast@0.5", "hpa-on-forecast@0.8"])
    for p in frontier.points:
        assert p.aggregate == alone.aggregates[p.point.name]
