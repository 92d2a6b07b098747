"""kubectl against the simulator: get, scale, apply of a CRD and a custom object."""

from __future__ import annotations

import subprocess
from pathlib import Path

from simulator.background import BackgroundCluster

HERE = Path(__file__).resolve().parent


def _kubectl(kubectl: str, kubeconfig: Path, *args: str) -> str:
    result = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"HOME": str(kubeconfig.parent), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_get_nodes_pods_deployments(kubectl: str, kubeconfig: Path, sim: BackgroundCluster) -> None:
    sim.advance(30)
    out = _kubectl(kubectl, kubeconfig, "get", "nodes,pods,deploy", "-A")
    assert "node/node-1" in out and "Ready" in out
    assert "deployment.apps/web" in out and "2/2" in out
    lines = [line for line in out.splitlines() if "pod/web-" in line]
    assert len(lines) == 2 and all("Running" in line and "1/1" in line for line in lines)


def test_scale_deployment(kubectl: str, kubeconfig: Path, sim: BackgroundCluster) -> None:
    out = _kubectl(kubectl, kubeconfig, "scale", "deployment/web", "-n", "shop", "--replicas=3")
    assert "scaled" in out
    sim.advance(30)
    out = _kubectl(kubectl, kubeconfig, "get", "deploy", "web", "-n", "shop")
    assert "3/3" in out


def test_apply_crd_and_custom_object(kubectl: str, kubeconfig: Path) -> None:
    data = HERE / "data"
    assert "created" in _kubectl(kubectl, kubeconfig, "apply", "-f", str(data / "pas-crd.yaml"))
    assert "created" in _kubectl(kubectl, kubeconfig, "apply", "-f", str(data / "pas-web.yaml"))
    assert "unchanged" in _kubectl(kubectl, kubeconfig, "apply", "-f", str(data / "pas-web.yaml"))
    out = _kubectl(kubectl, kubeconfig, "get", "pas", "-A")
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAMESPACE", "NAME", "TARGET", "MODE", "CURRENT", "DESIRED", "AGE"]
    assert row.split()[:4] == ["shop", "frontend", "frontend", "Auto"]


def test_missing_resource_type_and_object(kubectl: str, kubeconfig: Path) -> None:
    result = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "get", "pods", "ghost", "-n", "shop"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"HOME": str(kubeconfig.parent), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert 'pods "ghost" not found' in result.stderr
