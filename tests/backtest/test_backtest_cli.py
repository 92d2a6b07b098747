"""``foresight backtest`` end to end on a trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoscaler.backtest.policies import PolicyError, make_policy
from autoscaler.cli.main import main
from tests.support.traces import write_daily_trace


def test_json_has_every_trace_policy_and_aggregate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trace = write_daily_trace(tmp_path / "daily.csv", days=4)
    plot = tmp_path / "replay.png"
    argv = ["backtest", "--trace", str(trace), "--policy", "hpa@0.5", "oracle", "static"]
    code = main([*argv, "--startup", "2m", "--json", "--plot", str(plot)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["policy"] for r in out["results"]] == ["hpa@0.5", "oracle", "static"]
    for row in out["results"]:
        assert set(row) >= {"violation_pct", "unserved_pct", "cost_vs_oracle", "actions"}
    assert out["aggregates"]["oracle"]["cost_vs_oracle"] == 1.0
    assert out["aggregates"]["static"]["violation_pct"] == 0.0
    assert plot.stat().st_size > 10_000


def test_unknown_policy_lists_the_valid_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(
        PolicyError, match="valid: foresight, oracle, static, foresight:MODEL, hpa@T"
    ):
        make_policy("vpa")
    assert main(["backtest", "--trace", "/nonexistent.csv"]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_the_default_comparison_includes_the_peers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trace = write_daily_trace(tmp_path / "daily.csv", days=3)
    assert main(["backtest", "--trace", str(trace), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["aggregates"]) == [
        "foresight",
        "hpa@0.5",
        "hpa@0.7",
        "hpa@0.9",
        *(f"{peer}@{t}" for peer in ("ehpa", "phpa-hw", "phpa-lin") for t in (0.5, 0.7, 0.9)),
        "hpa-on-forecast@0.7",
        "oracle",
        "static",
    ]
    for a in out["aggregates"].values():
        assert a["actions_per_day"] >= 0
    # The verdict names each competitor's setting it was measured against, read back here.
    [verdict] = out["verdicts"]
    assert verdict["policy"] == "foresight"
    aggregates = out["aggregates"]
    peers = [n for n in aggregates if n.split("@")[0] in ("hpa", "ehpa", "phpa-hw", "phpa-lin")]
    assert verdict["cheapest"] == min(peers, key=lambda n: aggregates[n]["cost_vs_oracle"])
    ours = aggregates["foresight"]
    fewest = aggregates[verdict["fewest"]]
    assert verdict["fewer_violations"] == (ours["violation_pct"] < fewest["violation_pct"])
    assert verdict["met"] == (verdict["fewer_violations"] and verdict["cheaper_than_cheapest_best"])


def test_the_table_ends_with_the_verdict_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trace = write_daily_trace(tmp_path / "daily.csv", days=3)
    argv = ["backtest", "--trace", str(trace), "--policy", "foresight", "hpa@0.5", "hpa@0.9"]
    assert main([*argv, "hpa-on-forecast@0.5", "oracle"]) == 0
    lines = capsys.readouterr().out.rstrip().splitlines()
    assert lines[-2] == "against each competitor's best setting (hpa):"  # only hpa was replayed
    assert lines[-1].startswith("foresight: viol ")
    assert "hpa-on-forecast" not in lines[-1]
    assert "the cheapest setting of any hpa@0.9" in lines[-1]


def test_without_a_competitor_there_is_no_verdict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trace = write_daily_trace(tmp_path / "daily.csv", days=3)
    assert main(["backtest", "--trace", str(trace), "--policy", "foresight", "static"]) == 0
    assert "competitor" not in capsys.readouterr().out


def test_the_vertical_backtest_decides_as_often_as_the_controller(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = write_daily_trace(tmp_path / "cpu.csv", days=4)

    def scores() -> dict[str, dict[str, float]]:
        assert main(["backtest", "--vertical", "--trace", str(trace), "--json"]) == 0
        [result] = json.loads(capsys.readouterr().out)
        assert result["resource"] == "cpu"
        return {s["policy"]: s for s in result["scores"]}

    every_five_minutes = scores()
    monkeypatch.setenv("FORESIGHT_CONTROLLER__RESIZE_EVERY_SECONDS", "86400")
    daily = scores()
    assert set(daily) == {"foresight", "vpa", "krr"}
    assert daily["vpa"] == every_five_minutes["vpa"]
    # Two scored days: one decision a day resizes at most once.
    assert daily["foresight"]["resizes"] <= 1 < every_five_minutes["foresight"]["resizes"]


@pytest.mark.parametrize(
    "mode",
    [
        ["--policy", "foresight", "hpa@0.7"],
        ["--frontier", "--policy", "hpa", "--targets", "0.5", "0.9"],
        ["--vertical"],
        ["--joint"],
    ],
    ids=["comparison", "frontier", "vertical", "joint"],
)
def test_traces_replayed_in_parallel_give_the_same_figures_in_the_same_order(
    mode: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for seed in (1, 2, 3):
        write_daily_trace(tmp_path / f"cpu{seed}.csv", days=3, seed=seed)
    argv = ["backtest", "--trace", str(tmp_path), *mode, "--json"]

    def figures(jobs: str) -> str:
        assert main([*argv, "--jobs", jobs]) == 0
        return capsys.readouterr().out

    alone, together = figures("1"), figures("3")
    assert together == alone
    assert together.index('"cpu1"') < together.index('"cpu2"') < together.index('"cpu3"')


def test_jobs_must_be_a_whole_number_of_at_least_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trace = write_daily_trace(tmp_path / "daily.csv", days=3)
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(SystemExit) as exit_:
            main(["backtest", "--trace", str(trace), "--jobs", bad])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert f"argument --jobs: not a number of processes (1 or more): '{bad}'" in err


def test_a_bad_trace_in_a_worker_is_named_as_in_one_process(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_daily_trace(tmp_path / "a.csv", days=3)
    (tmp_path / "b.csv").write_text("timestamp,value\n1,2\nx,3\n", encoding="utf-8")
    assert main(["backtest", "--trace", str(tmp_path), "--jobs", "2"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'b.csv'}:3: not a 'timestamp,value' row" in err
    assert "Traceback" not in err


def test_by_default_one_worker_per_cpu_at_most_one_per_trace(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import concurrent.futures  # noqa: PLC0415

    from autoscaler.backtest import parallel  # noqa: PLC0415

    workers: list[int | None] = []

    class Recording(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, max_workers: int | None = None) -> None:
            workers.append(max_workers)
            super().__init__(max_workers)

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", Recording)
    monkeypatch.setattr("os.process_cpu_count", lambda: 6, raising=False)
    for seed in (1, 2, 3):
        write_daily_trace(tmp_path / f"t{seed}.csv", days=3, seed=seed)
    argv = ["backtest", "--trace", str(tmp_path), "--policy", "hpa@0.7", "--json"]
    assert main(argv) == 0
    assert main([*argv[:-1], "--frontier"]) == 0
    monkeypatch.setattr("os.process_cpu_count", lambda: 2, raising=False)
    assert main(argv) == 0
    capsys.readouterr()
    assert workers == [3, 3, 2]  # six CPUs, three traces: three; then two CPUs: two


def test_a_dead_worker_is_an_error_that_says_what_to_try(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import concurrent.futures  # noqa: PLC0415
    from concurrent.futures.process import BrokenProcessPool  # noqa: PLC0415

    from autoscaler.backtest import parallel  # noqa: PLC0415

    class Killed(concurrent.futures.ProcessPoolExecutor):
        # What the pool raises once the kernel has killed a worker (cannot be staged here
        # through the CLI; tests/backtest/test_parallel.py kills a real one).
        def map(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
            raise BrokenProcessPool("A process in the process pool was terminated abruptly")

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", Killed)
    for seed in (1, 2):
        write_daily_trace(tmp_path / f"t{seed}.csv", days=3, seed=seed)
    assert main(["backtest", "--trace", str(tmp_path), "--policy", "hpa@0.7", "--jobs", "2"]) == 1
    err = capsys.readouterr().err
    assert "a worker process died" in err and "--jobs" in err
    assert "Traceback" not in err
