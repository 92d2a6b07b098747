"""``backtest --joint``: the joint decision against replicas alone and against the fight."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autoscaler.backtest.joint import _Sized, run_joint
from autoscaler.backtest.observation import Observation
from autoscaler.backtest.trace import load_trace
from autoscaler.backtest.world import WorldConfig, build_world, replay
from autoscaler.cli.main import main
from autoscaler.controller.settings import ControllerSettings
from autoscaler.forecast.settings import ForecastSettings
from autoscaler.policy.settings import HorizontalSettings
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


def test_pods_are_sized_at_the_controllers_cadence(trace: Path) -> None:
    world = build_world(load_trace(trace), WorldConfig(warmup_seconds=2 * 86_400))
    sized_at: list[float] = []

    class Recording(_Sized):
        def size(self, obs: Observation, replicas: int) -> float:
            sized_at.append(obs.now)
            return self.pod_size

    settings = HorizontalSettings(min_replicas=2, max_replicas=10, target_utilisation=1.0)
    replay(world, Recording(world.info, ForecastSettings(), settings))
    every = ControllerSettings().resize_every_seconds
    assert len(sized_at) > 100
    assert set(np.diff(sized_at)) == {every}


def test_the_cli_sizes_pods_as_often_as_the_controller_is_set_to(
    trace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def resizes() -> dict[str, int]:
        argv = ["backtest", "--joint", "--trace", str(trace), "--warmup", "2d", "--json"]
        assert main(argv) == 0
        [result] = json.loads(capsys.readouterr().out)
        return {s["policy"]: s["resizes"] for s in result["scores"]}

    every_5_minutes = resizes()
    # A day between decisions: at most one resize a day on the trace's few scored days.
    monkeypatch.setenv("FORESIGHT_CONTROLLER__RESIZE_EVERY_SECONDS", "86400")
    daily = resizes()
    assert daily["independent"] <= 4 < every_5_minutes["independent"]
