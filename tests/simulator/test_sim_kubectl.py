"""kubectl against the simulator: get, scale, apply of a CRD and a custom object; over HTTPS
with the kubeconfig's CA and bearer token."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from simulator.background import BackgroundCluster

HERE = Path(__file__).resolve().parent


def _kubectl_result(kubectl: str, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"HOME": str(kubeconfig.parent), "PATH": "/usr/bin:/bin"},
    )


def _kubectl(kubectl: str, kubeconfig: Path, *args: str) -> str:
    result = _kubectl_result(kubectl, kubeconfig, *args)
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
    result = _kubectl_result(kubectl, kubeconfig, "get", "pods", "ghost", "-n", "shop")
    assert result.returncode == 1
    assert 'pods "ghost" not found' in result.stderr


def test_over_tls_kubectl_verifies_the_ca_and_sends_the_token(
    kubectl: str, tls_kubeconfig: Path, tls_sim: BackgroundCluster
) -> None:
    assert tls_sim.api_url.startswith("https://127.0.0.1:")
    tls_sim.advance(30)
    out = _kubectl(kubectl, tls_kubeconfig, "get", "nodes,pods,deploy", "-A")
    assert "node/node-1" in out and "deployment.apps/web" in out and "2/2" in out
    out = _kubectl(kubectl, tls_kubeconfig, "scale", "deployment/web", "-n", "shop", "--replicas=3")
    assert "scaled" in out
    tls_sim.advance(30)
    assert "3/3" in _kubectl(kubectl, tls_kubeconfig, "get", "deploy", "web", "-n", "shop")


def test_over_tls_a_wrong_token_or_an_unknown_ca_is_refused(
    kubectl: str, tls_kubeconfig: Path
) -> None:
    config = yaml.safe_load(tls_kubeconfig.read_text())
    config["users"][0]["user"]["token"] = "wrong"
    wrong_token = tls_kubeconfig.with_name("wrong-token")
    wrong_token.write_text(yaml.safe_dump(config))
    result = _kubectl_result(kubectl, wrong_token, "get", "nodes")
    assert result.returncode == 1 and "You must be logged in" in result.stderr
    config = yaml.safe_load(tls_kubeconfig.read_text())
    del config["clusters"][0]["cluster"]["certificate-authority-data"]
    no_ca = tls_kubeconfig.with_name("no-ca")
    no_ca.write_text(yaml.safe_dump(config))
    result = _kubectl_result(kubectl, no_ca, "get", "nodes")
    assert result.returncode == 1 and "certificate signed by unknown authority" in result.stderr
