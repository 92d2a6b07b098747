from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autoscaler import __version__
from autoscaler.cli.cmd_settings import settings_reference_markdown
from autoscaler.cli.commands import all_commands
from autoscaler.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ["run", "demo", "backtest", "dashboards", "cost", "rules", "promql", "simulator"]


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in [*SUBCOMMANDS, "settings", "store"]:
        assert f"\n    {name} " in out


@pytest.mark.parametrize("name", [*SUBCOMMANDS, "settings", "store"])
def test_each_subcommand_explains_itself(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert len(capsys.readouterr().out) > 100


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"foresight {__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        ["no-such-command"],
        ["--log-format", "xml", "settings"],
        [],
        ["store", "export", "--start", "soon"],
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err


def test_invalid_settings_exit_2_naming_the_source(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORESIGHT_STORE__FLUSH_INTERVAL_SECONDS", "-1")
    assert main(["settings"]) == 2
    assert "environment variable FORESIGHT_STORE__FLUSH_INTERVAL_SECONDS" in capsys.readouterr().err


def test_settings_shows_effective_values_with_secrets_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORESIGHT_WEBHOOK__SECRET", "s3cret")
    assert main(["--log-format", "json", "settings"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["log"]["format"] == "json"
    assert shown["webhook"]["secret"] == "**********"


def test_json_logs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoscaler.cli.main",
            "--log-format",
            "json",
            "--log-level",
            "DEBUG",
            "store",
            "stats",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={"FORESIGHT_STORE__DATA_DIR": str(data), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "series" in result.stdout


def test_readme_carries_the_current_settings_reference() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert settings_reference_markdown() in readme, (
        "README settings table is out of date: paste `foresight settings --reference`"
    )


def test_store_export_and_import_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORESIGHT_STORE__DATA_DIR", str(tmp_path / "data"))
    source = tmp_path / "in.om"
    source.write_text(
        "# TYPE load unknown\n"
        'load{pod="a"} 1.5 1700000000.000\n'
        'load{pod="a"} 2.5 1700000015.000\n'
        "# EOF\n"
    )
    assert main(["store", "import", str(source)]) == 0
    out = tmp_path / "out.om"
    assert main(["store", "export", "--match", 'load{pod="a"}', "--output", str(out)]) == 0
    assert out.read_text() == source.read_text()
    bad = tmp_path / "bad.om"
    bad.write_text("# TYPE load unknown\nload{pod=} 1 1\n# EOF\n")
    assert main(["store", "import", str(bad)]) == 1
    assert f"{bad}:2: " in capsys.readouterr().err


def test_every_command_is_built_and_explains_itself() -> None:
    commands = all_commands()
    assert [c.name for c in commands][: len(SUBCOMMANDS)] == SUBCOMMANDS
    assert all(c.help and c.description for c in commands)
