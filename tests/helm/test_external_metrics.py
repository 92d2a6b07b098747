"""The chart's external metrics API (externalMetrics): off by default; when on, an APIService
with its Service, certificate and the RBAC of an aggregated API server, every manifest valid
Kubernetes and the chart lint-clean, rendered by the real Helm library."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from autoscaler.metricsapi.documents import METRICS
from tests.helm.helmchart import CHART, NAMESPACE, Manifests, manifests
from tests.support.external import require_binary

ON = {"externalMetrics": {"enabled": True}}
NAME = "foresight-external-metrics"
CERT_MANAGER_KINDS = {"Certificate", "Issuer"}
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]


def external(rendered: Manifests) -> list[dict[str, Any]]:
    return [
        o
        for o in rendered.objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "external-metrics"
    ]


def test_off_by_default() -> None:
    rendered = manifests({})
    assert external(rendered) == []
    assert not rendered.of_kind("APIService")
    assert "external_metrics" not in rendered.settings_text()


@pytest.mark.parametrize(
    "values",
    [
        ON,
        {"externalMetrics": {"enabled": True, "certificate": {"source": "certManager"}}},
        {"externalMetrics": {"enabled": True, "hpaServiceAccount": None}},
        {"externalMetrics": {"enabled": True}, "networkPolicy": {"enabled": False}},
    ],
)
def test_lint_clean_and_valid_kubernetes(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
    rendered = manifests(values)
    assert external(rendered)
    for obj in rendered.objects:
        if obj["kind"] in CERT_MANAGER_KINDS:
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_api_service_points_at_the_service_of_the_pods() -> None:
    rendered = manifests(ON)
    api_service = rendered.one("APIService")
    assert api_service["metadata"]["name"] == "v1beta1.external.metrics.k8s.io"
    spec = api_service["spec"]
    assert (spec["group"], spec["version"]) == ("external.metrics.k8s.io", "v1beta1")
    assert spec["service"] == {"name": NAME, "namespace": NAMESPACE, "port": 443}
    assert "insecureSkipTLSVerify" not in spec
    service = rendered.one("Service", NAME)
    assert service["spec"]["ports"] == [
        {"name": "https", "port": 443, "targetPort": "external-metrics", "protocol": "TCP"}
    ]
    pod_labels = rendered.workload()["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    policy = rendered.one("NetworkPolicy", NAME)
    assert policy["spec"]["ingress"] == [
        {"ports": [{"port": "external-metrics", "protocol": "TCP"}]}
    ]


def test_the_generated_certificate_is_signed_by_the_ca_bundle_for_the_service_name(
    tmp_path: Path,
) -> None:
    openssl = require_binary("openssl")
    rendered = manifests(ON)
    secret = rendered.one("Secret", f"{NAME}-tls")
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ca_bundle = base64.b64decode(rendered.one("APIService")["spec"]["caBundle"])
    assert ca_bundle == data["ca.crt"]
    (tmp_path / "ca.crt").write_bytes(ca_bundle)
    (tmp_path / "tls.crt").write_bytes(data["tls.crt"])
    # As kube-apiserver checks it: the chain to the caBundle, for <service>.<namespace>.svc.
    verified = subprocess.run(
        [
            openssl,
            "verify",
            "-CAfile",
            str(tmp_path / "ca.crt"),
            "-verify_hostname",
            f"{NAME}.{NAMESPACE}.svc",
            str(tmp_path / "tls.crt"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert b"PRIVATE KEY" in data["tls.key"]


def test_cert_manager_issues_the_certificate_and_injects_the_ca() -> None:
    values = {
        "externalMetrics": {
            "enabled": True,
            "certificate": {
                "source": "certManager",
                "certManager": {"issuerRef": {"name": "cluster-ca", "kind": "ClusterIssuer"}},
            },
        }
    }
    rendered = manifests(values)
    api_service = rendered.one("APIService")
    assert api_service["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": f"{NAMESPACE}/{NAME}"
    }
    assert "caBundle" not in api_service["spec"]
    certificate = rendered.one("Certificate", NAME)
    assert certificate["spec"]["secretName"] == f"{NAME}-tls"
    assert f"{NAME}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"] == {"name": "cluster-ca", "kind": "ClusterIssuer"}
    assert not rendered.of_kind("Issuer")
    assert not [s for s in rendered.of_kind("Secret") if s["metadata"]["name"] == f"{NAME}-tls"]
    # Without an issuer, a self-signed one of the release.
    default = manifests(
        {"externalMetrics": {"enabled": True, "certificate": {"source": "certManager"}}}
    )
    assert default.one("Issuer")["spec"] == {"selfSigned": {}}


def test_an_existing_secret_needs_its_ca_bundle() -> None:
    values: dict[str, Any] = {
        "externalMetrics": {
            "enabled": True,
            "certificate": {"source": "existingSecret", "existingSecret": "metrics-tls"},
        }
    }
    with pytest.raises(helm.HelmError, match=re.escape("externalMetrics.certificate.caBundle")):
        manifests(values)
    values["externalMetrics"]["certificate"]["caBundle"] = base64.b64encode(b"PEM").decode()
    rendered = manifests(values)
    assert rendered.one("APIService")["spec"]["caBundle"] == base64.b64encode(b"PEM").decode()
    assert not [
        s for s in rendered.of_kind("Secret") if "external-metrics" in s["metadata"]["name"]
    ]


def test_the_rbac_of_an_aggregated_api_server() -> None:
    rendered = manifests(ON)
    account = {
        "kind": "ServiceAccount",
        "name": rendered.workload()["spec"]["template"]["spec"]["serviceAccountName"],
        "namespace": NAMESPACE,
    }
    delegator = rendered.one("ClusterRoleBinding", f"{NAME}:system:auth-delegator")
    assert delegator["roleRef"]["name"] == "system:auth-delegator"
    assert delegator["subjects"] == [account]
    reader = rendered.one("RoleBinding", f"{NAME}-auth-reader")
    assert reader["metadata"]["namespace"] == "kube-system"
    assert reader["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "extension-apiserver-authentication-reader",
    }
    assert reader["subjects"] == [account]
    role = rendered.one("ClusterRole", f"{NAME}-reader")
    assert role["rules"] == [
        {
            "apiGroups": ["external.metrics.k8s.io"],
            "resources": list(METRICS),
            "verbs": ["get", "list", "watch"],
        }
    ]
    hpa = rendered.one("ClusterRoleBinding", f"{NAME}-reader")
    assert hpa["subjects"] == [
        {"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}
    ]
    unbound = manifests({"externalMetrics": {"enabled": True, "hpaServiceAccount": None}})
    assert not [
        b
        for b in unbound.of_kind("ClusterRoleBinding")
        if b["metadata"]["name"] == f"{NAME}-reader"
    ]
    none = manifests(
        {**ON, "rbac": {"create": False}, "serviceAccount": {"create": False, "name": "x"}}
    )
    assert not none.of_kind("ClusterRoleBinding") and not none.of_kind("RoleBinding")


def test_the_pods_serve_the_api_with_the_certificate() -> None:
    rendered = manifests(ON)
    pod = rendered.workload()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"name": "external-metrics", "containerPort": 6443, "protocol": "TCP"} in container[
        "ports"
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FORESIGHT_EXTERNAL_METRICS__ENABLED"] == "true"
    assert env["FORESIGHT_EXTERNAL_METRICS__PORT"] == "6443"
    assert env["FORESIGHT_EXTERNAL_METRICS__TLS_CERT_FILE"].endswith("/tls.crt")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["FORESIGHT_EXTERNAL_METRICS__TLS_CERT_FILE"].startswith(
        mounts["external-metrics-tls"]
    )
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["external-metrics-tls"]["secret"]["secretName"] == f"{NAME}-tls"


def test_the_notes_say_that_only_one_provider_can_hold_the_group() -> None:
    notes = manifests(ON).notes
    assert "kubectl get apiservice v1beta1.external.metrics.k8s.io" in notes
    assert "Only one APIService can serve external.metrics.k8s.io" in notes
    assert "KEDA" in notes
    assert "external.metrics.k8s.io" not in manifests({}).notes
