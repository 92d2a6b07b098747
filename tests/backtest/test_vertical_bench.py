"""``bench.vertical``: which traces count as container usage, the margin summary, the floor,
the frontier's envelope, the shifted windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autoscaler.backtest.vertical import (
    VerticalResult,
    VerticalScore,
    replay_vertical,
    vertical_inputs,
)
from bench.vertical import ConstantFloor, main, slack_at, summarise, usage_kind


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("alibaba2018_cluster_cpu_util_percent", "cpu"),
        ("alibaba2018_cluster_mem_util_percent", "memory"),
        ("bitbrains_vm_memory_usage_kb", "memory"),
        ("bitbrains_vm_cpu_usage_mhz", "cpu"),
        ("crane_input6", "cpu"),
        ("google2019_cell_avg_mem", "memory"),
        ("nab_ec2_cpu_utilization_fe7f93", "cpu"),
        ("nab_grok_asg_anomaly", "cpu"),
        ("nab_Twitter_volume_AAPL", None),
        ("twitter_stream_2021_events_per_minute", None),
        ("nab_ec2_network_in_257a54", None),
    ],
)
def test_usage_kind_keeps_usage_and_leaves_out_counts(name: str, kind: str | None) -> None:
    assert usage_kind(name) == kind


def _result(
    trace: str, resource: str, f: tuple[float, float], vpa: tuple[float, float]
) -> VerticalResult:
    harm = "throttled_pct" if resource == "cpu" else "oom_events"

    def score(policy: str, slack: float, hurt: float) -> VerticalScore:
        figures = {"throttled_pct": 0.0, "oom_events": 0, harm: hurt}
        return VerticalScore(
            policy, slack, float(figures["throttled_pct"]), int(figures["oom_events"]), 0
        )

    return VerticalResult(trace, resource, [score("foresight", *f), score("vpa", *vpa)])


def test_summary_gives_the_spread_of_the_margin_and_names_the_harm() -> None:
    results = [
        _result("a", "cpu", (10.0, 1.0), (15.0, 2.0)),
        _result("b", "cpu", (20.0, 3.0), (21.0, 2.0)),
        _result("c", "cpu", (30.0, 0.0), (29.0, 0.0)),
        _result("m", "memory", (5.0, 0), (8.0, 1)),
    ]
    cpu, memory = summarise(results)
    assert (cpu.resource, cpu.traces) == ("cpu", 3)
    assert (cpu.minimum, cpu.median, cpu.maximum) == (-1.0, 1.0, 5.0)
    assert cpu.mean == pytest.approx(5 / 3)
    assert (cpu.q1, cpu.q3) == (0.0, 3.0)
    assert cpu.worse == ["b"]
    assert (cpu.looser, cpu.wins) == (["c"], ["a"])
    assert (memory.traces, memory.q1, memory.q3, memory.worse) == (1, 3.0, 3.0, [])
    assert memory.wins == ["m"]


def test_the_floor_is_a_constant_request_at_the_scored_peak() -> None:
    times = np.arange(5, dtype=np.float64) * 300
    usage = np.asarray([9.0, 1.0, 2.0, 4.0, 2.0])
    score = replay_vertical(times, usage, 1, "memory", ConstantFloor(4.0))
    assert (score.oom_events, score.resizes) == (0, 0)
    assert score.slack_pct == pytest.approx(100 * (0.75 + 0.5 + 0 + 0.5) / 4)


def test_the_frontier_envelope_mixes_neighbours_and_keeps_cheaper_points() -> None:
    def point(slack: float, throttled: float) -> VerticalScore:
        return VerticalScore("foresight", slack, throttled, 0, 0)

    points = [point(50.0, 0.0), point(30.0, 2.0), point(10.0, 6.0), point(40.0, 4.0)]
    assert slack_at(points, 4.0) == pytest.approx(20.0)  # halfway from (2, 30) to (6, 10)
    assert slack_at(points, 2.0) == 30.0
    assert slack_at(points, 10.0) == 10.0
    assert slack_at([point(5.0, 1.0)], 0.5) is None


def _cpu_trace(path: Path, days: float) -> None:
    t = np.arange(0, days * 86_400, 300.0)
    usage = 1.0 + 0.5 * np.sin(2 * np.pi * t / 86_400) + 0.05 * np.cos(t / 700)
    rows = (f"{a:.0f},{u:.4f}\n" for a, u in zip(t, usage, strict=True))
    path.write_text("timestamp,value\n" + "".join(rows))


def test_dropping_days_moves_the_warm_up_and_the_scored_window(tmp_path: Path) -> None:
    path = tmp_path / "svc_cpu.csv"
    _cpu_trace(path, days=6)
    whole, later = vertical_inputs(path), vertical_inputs(path, skip_days=2)
    assert later.times[0] == whole.times[0] + 2 * 86_400
    assert np.array_equal(later.usage, whole.usage[len(whole.times) - len(later.times) :])
    # Half of what is left is the warm-up: two days instead of three.
    assert later.times[later.first] == later.times[0] + 2 * 86_400
    assert whole.times[whole.first] == whole.times[0] + 3 * 86_400
    with pytest.raises(ValueError, match=r"svc_cpu\.csv: skipping 6 days leaves no usage"):
        vertical_inputs(path, skip_days=6)


def test_shift_summarises_each_shift_per_resource(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cpu_trace(tmp_path / "a_cpu.csv", days=4)
    _cpu_trace(tmp_path / "b_cpu.csv", days=5)
    assert main([str(tmp_path), "--shift", "1", "2", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    shifted = [line for line in out.splitlines() if line.startswith("first ")]
    assert [line.split(":")[0] for line in shifted] == [
        "first 1 days dropped",
        "first 2 days dropped",
    ]
    assert all(" cpu " in line and " of 2," in line for line in shifted)
    assert main([str(tmp_path), "--shift", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (shift,) = report["shifts"]
    assert shift["skip_days"] == 1.0
    assert [s["traces"] for s in shift["summaries"]] == [2]
    # The floor is scored on the unshifted run only.
    assert {s["policy"] for s in report["results"][0]["scores"]} >= {"foresight", "vpa", "floor"}


def test_shift_takes_only_positive_days(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--shift", "0"])
    assert "--shift takes days > 0" in capsys.readouterr().err
