"""``python -m bench.scaling``: one line per policy and startup, and the verdict per model."""

from __future__ import annotations

from pathlib import Path

import pytest

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
