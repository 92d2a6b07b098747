"""``backtest --joint``: the joint decision against replicas alone and against the fight."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoscaler.backtest.joint import run_joint
from autoscaler.backtest.world import WorldConfig
from autoscaler.cli.main import main
from tests.support.traces import write_daily_trace


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_daily_trace(tmp_path_factory.mktemp("joint") / "daily.csv", days=4)


def test_the_joint_decision_does_not_ratchet_and_the_independent_sides_do(trace: Path) -> None:
    result = run_joint(trace, WorldConfig(warmup_seconds=2 * 86_400))
    scores = {s.policy: s for s in result.scores}
    horizontal, joint, fight = scores["horizontal"], scores["joint"], scores["independent"]
    assert (horizontal.resizes, horizontal.pod_size_min, horizontal.pod_size_max) == (0, 1, 1)
    # Pods change size only at the bounds: a couple of times a day at most.
    assert joint.resizes <= 2 * 2
    assert joint.violation_pct <= horizontal.violation_pct
    assert joint.cost_vs_horizontal == pytest.approx(1.0, abs=0.15)
    # Sized from usage per pod, the pods shrink and violations follow.
    assert fight.pod_size_min < 0.9
    assert fight.violation_pct > joint.violation_pct


def test_the_cli_prints_every_policy_as_json(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "--joint", "--trace", str(trace), "--warmup", "2d", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert [s["policy"] for s in result["scores"]] == ["horizontal", "joint", "independent"]
