"""``foresight simulator serve`` as a user runs it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_writes_a_kubeconfig_that_kubectl_uses(tmp_path: Path, kubectl: str) -> None:
    kubeconfig = tmp_path / "kc"
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autoscaler.cli.main",
            "simulator",
            "serve",
            "--scenario",
            "default",
            "--port",
            str(port),
            "--kubeconfig-out",
            str(kubeconfig),
            "--speed",
            "600",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = ""
        while "kubeconfig written" not in banner and proc.poll() is None:
            banner += proc.stdout.readline()
        assert "kubeconfig written" in banner, banner
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{port}"
        out = ""
        for _ in range(50):
            out = subprocess.run(
                [kubectl, "--kubeconfig", str(kubeconfig), "get", "deploy", "-n", "shop"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
                env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            ).stdout
            if "3/3" in out:
                break
            time.sleep(0.1)
        assert "frontend" in out and "3/3" in out
    finally:
        proc.terminate()
        code = proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0


def test_bad_scenario_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes:\n  - {name: n, cpu: lots}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoscaler.cli.main",
            "simulator",
            "serve",
            "--scenario",
            str(bad),
            "--port",
            "0",
            "--kubeconfig-out",
            str(tmp_path / "kc"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"{bad}:2:20: nodes.0.cpu: Value error, 'lots' is not a quantity" in result.stderr
