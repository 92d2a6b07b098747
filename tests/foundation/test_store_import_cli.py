"""``foresight store import``: formats, warnings, errors and progress as the user sees them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from autoscaler.cli.cmd_store import ProgressPrinter
from autoscaler.cli.main import main
from runtime.clock import VirtualClock
from tsdb.openmetrics import ImportProgress


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESIGHT_STORE__DATA_DIR", str(tmp_path / "data"))


def test_imports_both_formats_and_warns_of_scattered_families(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    om = tmp_path / "scattered.om"
    om.write_text(
        "# TYPE load gauge\n"
        'load{pod="a"} 1 1700000000\n'
        "# TYPE up gauge\n"
        "up 1 1700000000\n"
        'load{pod="a"} 2 1700000015\n'
        "# EOF\n"
    )
    prom = tmp_path / "text.prom"
    prom.write_text('load{pod="a"} 3 1700000030000\n')
    assert main(["store", "import", str(om), str(prom)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"warning: {om}:5: metric family load continues here after other families (it began "
        "at line 1); imported anyway, as promtool does",
        f"{om}: imported 3 samples (openmetrics)",
        f"{prom}: imported 1 samples (prometheus)",
    ]
    out = tmp_path / "out.om"
    assert main(["store", "export", "--match", "load", "--output", str(out)]) == 0
    assert out.read_text().splitlines()[1:] == [
        'load{pod="a"} 1.0 1700000000.000',
        'load{pod="a"} 2.0 1700000015.000',
        'load{pod="a"} 3.0 1700000030.000',
        "# EOF",
    ]


def test_a_forced_format_that_does_not_fit_is_an_error_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    om = tmp_path / "seconds.om"
    om.write_text("load 1 1700000000.000\n# EOF\n")
    assert main(["store", "import", "--format", "prometheus", str(om)]) == 1
    assert f"{om}:1: invalid timestamp '1700000000.000'" in capsys.readouterr().err


def test_progress_is_printed_every_few_seconds() -> None:
    clock = VirtualClock(start=1000.0)
    out = io.StringIO()
    printer = ProgressPrinter(clock, out, every=5.0)
    printer(ImportProgress("big.om", 100, 1000, 10_000))
    assert out.getvalue() == ""
    clock.advance(5.0)
    printer(ImportProgress("big.om", 500, 1000, 1_500_000))
    clock.advance(1.0)
    printer(ImportProgress("big.om", 600, 1000, 1_800_000))
    assert out.getvalue() == "big.om: 1,500,000 samples, 50% read, 300,000 samples/s\n"
