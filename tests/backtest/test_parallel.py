"""map_traces: results in the traces' order, in this process for one job, a dead worker raised."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from autoscaler.backtest.frontier import SweepPoint, run_frontier
from autoscaler.backtest.parallel import map_traces
from autoscaler.backtest.world import WorldConfig
from tests.support.traces import write_daily_trace

PATHS = [Path(f"/traces/{name}.csv") for name in ("c", "a", "b")]


def _where(path: Path) -> tuple[str, int]:
    return path.stem, os.getpid()


def _dies(path: Path) -> str:
    if path.stem == "a":
        os._exit(3)  # as the kernel's OOM killer would end it: no exception, no cleanup
    return path.stem


def test_in_order_in_workers_and_here_for_one_job() -> None:
    here = list(map_traces(_where, PATHS, 1))
    assert here == [(p.stem, os.getpid()) for p in PATHS]
    there = list(map_traces(_where, PATHS, 3))
    assert [name for name, _ in there] == ["c", "a", "b"]
    assert os.getpid() not in {pid for _, pid in there}
    assert list(map_traces(_where, PATHS[:1], 4)) == [("c", os.getpid())]  # one trace: here


def test_a_worker_that_dies_is_raised() -> None:
    with pytest.raises(BrokenProcessPool):
        list(map_traces(_dies, PATHS, 2))


def test_frontier_progress_counts_points_here_and_traces_with_workers(tmp_path: Path) -> None:
    paths = [write_daily_trace(tmp_path / f"t{k}.csv", days=3, seed=k) for k in (1, 2)]
    points = [SweepPoint("hpa", "target", t, f"hpa@{t:g}", None) for t in (0.5, 0.9)]
    config = WorldConfig(startup_seconds=60, peak_replicas=20)
    calls: list[tuple[int, int, str]] = []
    alone = run_frontier(paths, config, points, lambda *c: calls.append(c), jobs=1)
    assert [(d, t) for d, t, _ in calls] == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert calls[1][2] == "t1 hpa@0.9"
    calls.clear()
    together = run_frontier(paths, config, points, lambda *c: calls.append(c), jobs=2)
    assert calls == [(1, 2, "t1"), (2, 2, "t2")]
    assert together == alone
