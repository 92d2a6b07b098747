"""The rendered Deployment starts foresight: its command, environment and mounted files,
laid out under a temporary root, run `foresight run` against the simulated cluster.

Each volume mount becomes a directory under the root, filled from the ConfigMap or Secret
the chart mounts there, and every path in the settings moves with it. What a cluster would
provide stands in as files too: the service account's token and CA (the simulator's), and a
kubeconfig instead of the in-cluster configuration, the one setting added here.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from autoscaler.settings import load_settings
from tests.helm.helmchart import NAMESPACE, Manifests, manifests
from tests.helm.test_grafana import datasource

POD_NAME = "foresight-5d8c7b9f4-x2x7k"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SECRETS = {("team-webhook", "hmac"): "team-key", ("foresight-webhook", "secret"): "default-key"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def values(port: int, api_port: int, grafana_token: Path) -> dict[str, Any]:
    return {
        "grafana": {"datasource": {"enabled": True, "tokenFile": str(grafana_token)}},
        "webhookSecret": {"existingSecret": "foresight-webhook"},
        "secretMounts": [{"name": "team-webhook"}],
        "alertRules": {
            "chart.yaml": {
                "groups": [
                    {
                        "name": "from-the-chart",
                        "rules": [{"alert": "ChartRuleLoaded", "expr": "vector(1)"}],
                    }
                ]
            }
        },
        "config": {
            # Loopback: tests reach nothing else (the chart's 0.0.0.0 is for a pod).
            "server": {"port": port, "api_port": api_port, "host": "127.0.0.1"},
            "collectors": {"scrape_interval_seconds": 1, "stagger_seconds": 0},
            "notify": {
                "route": {"receiver": "team"},
                "receivers": [
                    {
                        "name": "team",
                        "webhook_configs": [
                            {
                                "url": "http://127.0.0.1:9/hook",
                                "secret_file": "/etc/foresight/secrets/team-webhook/hmac",
                            }
                        ],
                    }
                ],
            },
        },
    }


class Pod:
    """The container's view of its files, under ``root``."""

    def __init__(self, rendered: Manifests, root: Path) -> None:
        self.rendered = rendered
        self.root = root
        self.mounts: list[str] = []

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def lay_out(self) -> None:
        spec = self.rendered.workload()["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        config_maps = {c["metadata"]["name"]: c for c in self.rendered.of_kind("ConfigMap")}
        for mount in self.rendered.container()["volumeMounts"]:
            target = self.path(mount["mountPath"])
            target.mkdir(parents=True)
            self.mounts.append(mount["mountPath"])
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                data = config_maps[volume["configMap"]["name"]]["data"]
                for key, text in data.items():
                    (target / key).write_text(text, encoding="utf-8")
            elif "secret" in volume:
                name = volume["secret"]["secretName"]
                for (secret, key), value in SECRETS.items():
                    if secret == name:
                        (target / key).write_text(value, encoding="utf-8")
            else:
                assert "emptyDir" in volume, volume
        # The settings file, with every path moved under the root.
        config = self.path(self.rendered.container()["args"][1])
        mounts = "|".join(re.escape(m) for m in sorted(self.mounts, key=len, reverse=True))
        text = re.sub(
            rf"(?<= )({mounts})(?=[/\n])",
            lambda m: str(self.path(m.group(1))),
            config.read_text(encoding="utf-8"),
        )
        config.write_text(text, encoding="utf-8")

    def environment(self) -> dict[str, str]:
        env = {}
        for item in self.rendered.container()["env"]:
            if "value" in item:
                env[item["name"]] = item["value"]
                continue
            source = item["valueFrom"]
            if "fieldRef" in source:
                field = source["fieldRef"]["fieldPath"]
                env[item["name"]] = {"metadata.name": POD_NAME, "metadata.namespace": NAMESPACE}[
                    field
                ]
            else:
                ref = source["secretKeyRef"]
                env[item["name"]] = SECRETS[(ref["name"], ref["key"])]
        return env

    def argv(self) -> list[str]:
        container = self.rendered.container()
        args = list(container["args"])
        args[1] = str(self.path(args[1]))
        return [*container["command"], *args]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Path]:
    kubeconfig = tmp_path / "simulator.kubeconfig"
    process = subprocess.Popen(
        [
            *_foresight(),
            "simulator",
            "serve",
            "--tls",
            "--port",
            "0",
            "--speed",
            "60",
            "--kubeconfig-out",
            str(kubeconfig),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not kubeconfig.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.1)
        yield kubeconfig
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


def _foresight() -> list[str]:
    return [sys.executable, "-m", "autoscaler.cli.main"]


def _service_account(pod: Pod, kubeconfig: Path) -> None:
    """The files automountServiceAccountToken provides, for the simulator."""
    config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    directory = pod.path(SERVICE_ACCOUNT_DIR)
    directory.mkdir(parents=True)
    ca = config["clusters"][0]["cluster"]["certificate-authority-data"]
    (directory / "ca.crt").write_bytes(base64.b64decode(ca))
    (directory / "token").write_text(config["users"][0]["user"]["token"], encoding="utf-8")
    (directory / "namespace").write_text(NAMESPACE, encoding="utf-8")


def test_the_rendered_pod_starts_foresight_run(simulator: Path, tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    rendered = manifests(values(port, api_port, tmp_path / "grafana" / "token"))
    pod = Pod(rendered, tmp_path / "root")
    pod.lay_out()
    _service_account(pod, simulator)
    _create_namespace(simulator)
    # Settings come only from what the pod defines, plus the stand-ins for the cluster.
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FORESIGHT_")}
    env |= pod.environment()
    env["FORESIGHT_KUBERNETES__KUBECONFIG"] = str(simulator)
    sa = pod.path(SERVICE_ACCOUNT_DIR)
    env["FORESIGHT_COLLECTORS__CA_FILE"] = str(sa / "ca.crt")
    env["FORESIGHT_COLLECTORS__TOKEN_FILE"] = str(sa / "token")
    argv = pod.argv()
    assert argv[0] == "foresight"
    process = subprocess.Popen(
        [*_foresight(), *argv[1:]],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Ready, and leading under the pod's name: the Lease in the release namespace.
        _wait_leading(process, port)
        # The API, on its own port, takes the ServiceAccount's token: checked by TokenReview
        # and SubjectAccessReview with the chart's RBAC (the simulator's token is an admin's).
        token = (pod.path(SERVICE_ACCOUNT_DIR) / "token").read_text(encoding="utf-8")
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=5) as http:
            assert http.get("/api/v1/rules").status_code == 401
            answer = http.get("/api/v1/rules", headers={"Authorization": f"Bearer {token}"})
            groups = answer.json()["data"]["groups"]
        assert "from-the-chart" in {g["name"] for g in groups}
        _query_as_the_grafana_data_source(rendered, api_port, token, tmp_path)
        lease = _lease(simulator, rendered)
        assert lease.spec.holder_identity == POD_NAME
        settings = load_settings(pod.path(rendered.container()["args"][1]))
        hooks = [h for r in settings.notify.receivers for h in r.webhook_configs]
        assert hooks and all(h.secret_file and h.secret_file.is_file() for h in hooks)
        # The store and the alert state are written where the chart mounts its volume.
        data = pod.path("/var/lib/foresight")
        assert any((data / "data").iterdir())
        assert (data / "alerts").is_dir()
        # SIGHUP reloads the rule files and never ends the process (its default action would).
        rules_dir = next(p for p in settings.rules.files if p.is_dir())
        (rules_dir / "added.yaml").write_text(
            "groups:\n- name: added-on-sighup\n  rules:\n  - record: x:up\n    expr: vector(1)\n",
            encoding="utf-8",
        )
        process.send_signal(signal.SIGHUP)
        _wait_for_group(process, api_port, token, "added-on-sighup")
        process.send_signal(signal.SIGTERM)
        grace = rendered.workload()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        try:
            code = process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate(timeout=10)
            pytest.fail(f"foresight did not stop within {grace} s of SIGTERM:\n{stderr}")
        assert code == 0
    finally:
        if process.poll() is None:
            process.kill()
        # Bounded: a descendant still holding the pipe must not hang the test.
        _, stderr = process.communicate(timeout=10)
    assert "Traceback" not in stderr, stderr
    # Rule files, secret files and kubelet certificates were all found where the chart put them.
    assert '"level": "ERROR"' not in stderr, stderr
    assert '"level": "WARNING"' not in stderr, stderr


def _query_as_the_grafana_data_source(
    rendered: Manifests, api_port: int, token: str, tmp_path: Path
) -> None:
    """A query sent the way the chart's Grafana data source sends it: its method (a
    form-encoded POST), its path below the data source URL, and its header with the token
    file expanded as Grafana expands `$__file{...}` (the file's text, trimmed)."""
    source = datasource(rendered)
    token_file = Path(rendered_token_file(rendered))
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token + "\n", encoding="utf-8")
    header = re.sub(
        r"\$__file\{([^}]*)\}",
        lambda m: Path(m.group(1)).read_text(encoding="utf-8").strip(),
        source["secureJsonData"]["httpHeaderValue1"],
    )
    name = source["jsonData"]["httpHeaderName1"]
    assert source["url"].startswith("http://") and source["jsonData"]["httpMethod"] == "POST"
    with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as http:
        answer = http.post("/api/v1/query", data={"query": "vector(1)"}, headers={name: header})
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["resultType"] == "vector"
        assert http.post("/api/v1/query", data={"query": "vector(1)"}).status_code == 401


def rendered_token_file(rendered: Manifests) -> str:
    value: str = datasource(rendered)["secureJsonData"]["httpHeaderValue1"]
    return value.removeprefix("Bearer $__file{").removesuffix("}")


def _wait_leading(process: subprocess.Popen[str], port: int) -> None:
    leading = f'foresight_leader{{identity="{POD_NAME}"}} 1.0'
    deadline = time.monotonic() + 25
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:
        while True:
            if process.poll() is not None:
                pytest.fail(f"foresight exited with {process.returncode}: {process.stderr}")
            try:
                if http.get("/readyz").status_code == 200 and leading in http.get("/metrics").text:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "foresight did not become ready and lead"
            time.sleep(0.2)


def _wait_for_group(process: subprocess.Popen[str], port: int, token: str, group: str) -> None:
    deadline = time.monotonic() + 10
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2, headers=headers) as http:
        while True:
            assert process.poll() is None, f"foresight exited with {process.returncode}"
            groups = http.get("/api/v1/rules").json()["data"]["groups"]
            if group in {g["name"] for g in groups}:
                return
            assert time.monotonic() < deadline, f"rule group {group} not loaded after SIGHUP"
            time.sleep(0.1)


def _create_namespace(kubeconfig: Path) -> None:
    """The release namespace, as `helm install --create-namespace` makes it."""
    api = k8s_config.new_client_from_config(str(kubeconfig))
    try:
        body = k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE))
        k8s.CoreV1Api(api).create_namespace(body)
    finally:
        api.close()


def _lease(kubeconfig: Path, rendered: Manifests) -> Any:
    settings = yaml.safe_load(rendered.settings_text())
    api = k8s_config.new_client_from_config(str(kubeconfig))
    try:
        return k8s.CoordinationV1Api(api).read_namespaced_lease(
            settings["leader"]["name"], NAMESPACE
        )
    finally:
        api.close()
