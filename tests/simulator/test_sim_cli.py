"""``foresight simulator serve`` as a user runs it."""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml
from kubernetes import client
from kubernetes import config as config_module

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _serving(kubeconfig: Path, port: int, *extra: str) -> Iterator[str]:
    """``foresight simulator serve`` in a subprocess; yields its banner once it is up."""
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
            *extra,
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
        yield banner
    finally:
        proc.terminate()
        code = proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0


def _wait_for_frontend(kubectl: str, kubeconfig: Path) -> str:
    out = ""
    for _ in range(50):
        out = subprocess.run(
            [kubectl, "--kubeconfig", str(kubeconfig), "get", "deploy", "-n", "shop"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={"HOME": str(kubeconfig.parent), "PATH": "/usr/bin:/bin"},
        ).stdout
        if "3/3" in out:
            break
        time.sleep(0.1)
    return out


def test_serve_writes_a_kubeconfig_that_kubectl_uses(tmp_path: Path, kubectl: str) -> None:
    kubeconfig = tmp_path / "kc"
    port = _free_port()
    with _serving(kubeconfig, port):
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{port}"
        out = _wait_for_frontend(kubectl, kubeconfig)
        assert "frontend" in out and "3/3" in out
        # The PredictiveAutoscaler resource is served, as where the chart installed it.
        pas = subprocess.run(
            [kubectl, "--kubeconfig", str(kubeconfig), "get", "pas", "-A"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={"HOME": str(kubeconfig.parent), "PATH": "/usr/bin:/bin"},
        )
        assert pas.returncode == 0, pas.stderr
        assert "No resources found" in pas.stderr


def test_serve_with_tls_gives_kubectl_and_the_client_a_ca_and_a_token(
    tmp_path: Path, kubectl: str
) -> None:
    kubeconfig = tmp_path / "kc"
    port = _free_port()
    with _serving(kubeconfig, port, "--tls") as banner:
        assert f"https://127.0.0.1:{port}" in banner
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == f"https://127.0.0.1:{port}"
        ca = base64.b64decode(cluster["certificate-authority-data"])
        assert ca.startswith(b"-----BEGIN CERTIFICATE-----")
        token = config["users"][0]["user"]["token"]
        assert len(token) >= 20
        assert kubeconfig.stat().st_mode & 0o777 == 0o600
        out = _wait_for_frontend(kubectl, kubeconfig)
        assert "frontend" in out and "3/3" in out
        # The official client verifies the CA from the kubeconfig and sends the token.
        with config_module.new_client_from_config(str(kubeconfig)) as api:
            nodes = client.CoreV1Api(api).list_node()
        assert len(nodes.items) == 4
        unauthenticated = httpx.get(
            f"https://127.0.0.1:{port}/api/v1/nodes", verify=_context(ca), timeout=10
        )
        assert unauthenticated.status_code == 401
        # The scheme in any case, as the API server reads it (in-cluster clients send it so).
        lower = httpx.get(
            f"https://127.0.0.1:{port}/api/v1/nodes",
            headers={"Authorization": f"bearer {token}"},
            verify=_context(ca),
            timeout=10,
        )
        assert lower.status_code == 200


def _context(ca: bytes) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.decode("ascii"))


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
