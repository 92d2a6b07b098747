"""Secure by default: non-root with a fixed UID, read-only root file system, no privilege
escalation, no capabilities, RuntimeDefault seccomp, the token only where it is used, and
secrets only through Secret references."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.helmchart import CI_VALUES, ci_values, manifests, walk
from tests.helm.test_dockerfile import image_user

CASES = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]


@pytest.mark.parametrize("case", CASES)
def test_pod_and_container_security_context(case: str) -> None:
    rendered = manifests(ci_values(case))
    pod = rendered.workload()["spec"]["template"]["spec"]
    uid = image_user()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = rendered.container()
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == uid
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


@pytest.mark.parametrize("case", CASES)
def test_writable_paths_are_volumes(case: str) -> None:
    rendered = manifests(ci_values(case))
    pod = rendered.workload()["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in rendered.container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tmp"]]["emptyDir"] == {"sizeLimit": "256Mi"}
    assert "/var/lib/foresight" in mounts


def test_service_account_token_is_mounted_only_into_foresight() -> None:
    rendered = manifests({})
    assert rendered.one("ServiceAccount")["automountServiceAccountToken"] is False
    assert rendered.workload()["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


@pytest.mark.parametrize("case", CASES)
def test_no_secret_values_anywhere(case: str) -> None:
    rendered = manifests(ci_values(case))
    # Only token Secrets the API server fills (Grafana's, with grafana.datasource).
    for secret in rendered.of_kind("Secret"):
        assert secret["type"] == "kubernetes.io/service-account-token"
        assert not secret.get("data") and not secret.get("stringData")
    for obj in rendered.of_kind("ConfigMap"):
        for path, value in walk(obj.get("data", {})):
            assert not path.endswith("secret"), (obj["metadata"]["name"], path, value)
    settings = rendered.settings_text()
    assert "secret:" not in settings


def test_webhook_secrets_come_from_secret_references() -> None:
    rendered = manifests(ci_values("all-on"))
    env = {e["name"]: e for e in rendered.container()["env"]}
    assert env["FORESIGHT_WEBHOOK__SECRET"]["valueFrom"] == {
        "secretKeyRef": {"name": "foresight-webhook", "key": "hmac"}
    }
    pod = rendered.workload()["spec"]["template"]["spec"]
    secrets = {v["secret"]["secretName"]: v for v in pod["volumes"] if "secret" in v}
    assert set(secrets) == {"team-webhook", "pager-webhook"}
    mounts = {m["name"]: m for m in rendered.container()["volumeMounts"]}
    for name, volume in secrets.items():
        mount = mounts[volume["name"]]
        assert mount["readOnly"] is True
        assert mount["mountPath"] == f"/etc/foresight/secrets/{name}"
    assert "/etc/foresight/secrets/team-webhook/hmac" in rendered.settings_text()


def test_network_policy_opens_each_port_to_its_own_peers() -> None:
    rendered = manifests(ci_values("all-on"))
    policy = rendered.one("NetworkPolicy")
    # The third rule lets Grafana's data source in (tests/helm/test_grafana.py).
    metrics, api, grafana = policy["spec"]["ingress"]
    assert grafana["ports"] == [{"port": "api", "protocol": "TCP"}]
    assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert api["ports"] == [{"port": "api", "protocol": "TCP"}]
    assert api["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    # The ports it names are the container's.
    names = {p["name"] for p in rendered.container()["ports"]}
    assert names == {"metrics", "api"}


def test_network_policy_is_on_by_default() -> None:
    policy = manifests({}).one("NetworkPolicy")
    metrics, api = policy["spec"]["ingress"]
    # Prometheus of kube-prometheus-stack in "monitoring" scrapes; it cannot reach the API.
    assert metrics == {
        "ports": [{"port": "metrics", "protocol": "TCP"}],
        "from": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            }
        ],
    }
    assert api == {"ports": [{"port": "api", "protocol": "TCP"}], "from": [{"podSelector": {}}]}
    # Egress stays open unless rules are given: the API server, kubelets and webhooks.
    assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_a_port_without_peers_is_closed() -> None:
    only_metrics: dict[str, Any] = {"networkPolicy": {"api": {"from": []}}}
    (rule,) = manifests(only_metrics).one("NetworkPolicy")["spec"]["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    closed: dict[str, Any] = {"networkPolicy": {"api": {"from": []}, "metrics": {"from": []}}}
    assert manifests(closed).one("NetworkPolicy")["spec"]["ingress"] == []
    assert manifests({"networkPolicy": {"enabled": False}}).of_kind("NetworkPolicy") == []
