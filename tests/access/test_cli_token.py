"""``foresight silence`` sends the bearer token of ``--token-file`` or ``FORESIGHT_TOKEN`` to a
guarded API, and never prints it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from autoscaler.cli.main import main
from tests.access.conftest import TOKENS, serve

ADMIN = "admin-token-0123456789"
VIEW = "view-token-0123456789"


async def test_token_from_file_or_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(TOKENS)
    (tmp_path / "admin").write_text(ADMIN + "\n")
    async with serve(tmp_path, auth="token-file", token_file=tokens) as s:

        async def silence(*argv: str) -> tuple[int, str, str]:
            code = await asyncio.to_thread(main, ["silence", "--url", s.api_url, *argv])
            out, err = capsys.readouterr()
            return code, out, err

        monkeypatch.delenv("FORESIGHT_TOKEN", raising=False)
        code, _, err = await silence("add", "alertname=JobDown", "-c", "x")
        assert code == 1
        assert (
            "401: a bearer token is required" in err
            and "--token-file or set FORESIGHT_TOKEN" in err
        )
        code, out, _ = await silence(
            "--token-file", str(tmp_path / "admin"), "add", "alertname=JobDown", "-c", "x"
        )
        assert code == 0
        sid = out.strip()
        monkeypatch.setenv("FORESIGHT_TOKEN", VIEW)
        code, out, _ = await silence("list", "-q")
        assert (code, out.split()) == (0, [sid])
        code, _, err = await silence("expire", sid)
        assert code == 1
        assert 'forbidden: User "bob" cannot delete resource "silences"' in err
        assert VIEW not in err and ADMIN not in err
        monkeypatch.setenv("FORESIGHT_TOKEN", "wrong-token-0123456789")
        code, _, err = await silence("list")
        assert code == 1 and "401: invalid bearer token" in err and "wrong-token" not in err
        code, _, err = await silence("--token-file", str(tmp_path / "admin"), "expire", sid)
        assert code == 0


def test_an_unreadable_token_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").write_text("\n")
    assert main(["silence", "--token-file", str(tmp_path / "empty"), "list"]) == 1
    assert "empty: the token file is empty" in capsys.readouterr().err
    assert main(["silence", "--token-file", str(tmp_path / "missing"), "list"]) == 1
    assert "missing: cannot read the token file" in capsys.readouterr().err


def test_run_refuses_a_missing_token_file_before_opening_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    config = tmp_path / "foresight.yaml"
    config.write_text(
        f"server: {{auth: token-file, token_file: {tmp_path}/tokens.csv}}\n"
        f"store: {{data_dir: {tmp_path}/data}}\n"
        f"kubernetes: {{kubeconfig: {kubeconfig}}}\n"
    )
    assert main(["--config", str(config), "run"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}/tokens.csv: cannot read the token file" in err
    assert "Traceback" not in err
    assert not (tmp_path / "data").exists()
