"""The suite's closing line names what did not run, with tests in one process or in xdist
workers, and ``CI=true`` turns every miss into a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

NEEDS = """
from tests.support.external import require_binary, require_data

def test_a_trace() -> None:
    require_data("traces/nowhere.csv")

def test_another_trace() -> None:
    require_data("traces/elsewhere.csv")

def test_promtool() -> None:
    require_binary("promtool")

def test_nothing_missing() -> None:
    pass
"""


def _run(tmp_path: Path, workers: str, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "test_needs.py").write_text(NEEDS)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    # No programs on the PATH, and an empty data folder: every require_ misses.
    env |= {"PATH": "", "FORESIGHT_TEST_DATA": str(tmp_path / "empty"), "PYTHONPATH": str(REPO)}
    if ci:
        env["CI"] = "true"
    config = ["-c", os.devnull, "--rootdir", str(tmp_path)]
    plugins = ["-p", "tests.conftest", "-p", "no:cacheprovider"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *config, *plugins, "-n", workers, str(tmp_path / "x")],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("workers", ["0", "2"])
def test_the_closing_line_names_each_miss_once(tmp_path: Path, workers: str) -> None:
    run = _run(tmp_path, workers, ci=False)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    closing = [line for line in lines if line.startswith("not run:")]
    assert closing == [
        "not run: real load traces (set FORESIGHT_TEST_DATA to the test data folder; "
        f"looked in {tmp_path / 'empty'}); binaries missing: promtool (make system-deps)"
    ]
    # The line comes right before pytest's closing counts.
    assert lines.index(closing[0]) == len(lines) - 2
    assert "1 passed, 3 skipped" in lines[-1]


@pytest.mark.parametrize("workers", ["0", "2"])
def test_under_ci_every_miss_fails_the_run(tmp_path: Path, workers: str) -> None:
    run = _run(tmp_path, workers, ci=True)
    assert run.returncode == 1
    assert "3 failed, 1 passed" in run.stdout.splitlines()[-1]
    assert "(CI runs every suite)" in run.stdout
