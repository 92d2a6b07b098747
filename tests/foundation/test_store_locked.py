"""A second foresight on a data directory in use stops with one line naming the directory and
the process holding its lock, exit code 1, and no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from autoscaler.cli.main import main
from runtime.clock import VirtualClock
from tsdb import Store, StoreLocked, StoreSettings

REPO = Path(__file__).resolve().parents[2]

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "http://127.0.0.1:9"}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
users:
- name: u
  user: {token: t}
"""


def test_the_message_names_the_holder(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path / "data")
    with Store(settings, VirtualClock(0)), pytest.raises(StoreLocked) as err:
        Store(settings, VirtualClock(0))
    holder = f"pid {os.getpid()} on {socket.gethostname()}"
    assert str(err.value) == (
        f"{tmp_path / 'data'}: another foresight process has this store open ({holder}, "
        f"locking {tmp_path / 'data' / 'lock'}); stop it or give this one another "
        "store.data_dir"
    )
    # Released on close: the next one opens it and names itself.
    with Store(settings, VirtualClock(0)):
        assert (tmp_path / "data" / "lock").read_text() == holder


def test_store_command_exits_1_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORESIGHT_STORE__DATA_DIR", str(tmp_path / "data"))
    with Store(StoreSettings(data_dir=tmp_path / "data"), VirtualClock(0)):
        assert main(["store", "stats"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"foresight store: {tmp_path / 'data'}: another foresight process")


def test_second_foresight_run_exits_1_without_a_traceback(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    data = tmp_path / "data"
    with Store(StoreSettings(data_dir=data), VirtualClock(0)):
        result = subprocess.run(
            [sys.executable, "-m", "autoscaler.cli.main", "run", "--kubeconfig", str(kubeconfig)],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            env={
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(REPO),
                "FORESIGHT_STORE__DATA_DIR": str(data),
                "FORESIGHT_SERVER__HOST": "127.0.0.1",
                "FORESIGHT_SERVER__PORT": "0",
                "FORESIGHT_LEADER__ENABLED": "false",
            },
            timeout=120,
        )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr == (
        f"foresight run: {data}: another foresight process has this store open "
        f"(pid {os.getpid()} on {socket.gethostname()}, locking {data / 'lock'}); "
        "stop it or give this one another store.data_dir\n"
    )
