"""The chart rendered and linted by the real Helm library, every manifest checked against the
Kubernetes schemas, for each values file of ``helm/foresight/ci``."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from autoscaler.resource.crd import crd_manifest
from dashboards import build_all
from tests.helm.helmchart import (
    CHART,
    CI_VALUES,
    MONITORING_API,
    NAMESPACE,
    OPERATOR_KINDS,
    ci_values,
    crds,
    manifests,
    render,
)

KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
CASES = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]
WARNING = 2
COMPONENT = "app.kubernetes.io/component"


def test_ci_values_files_cover_the_required_cases() -> None:
    required = {"default", "minimal", "all-on", "prometheus-operator", "persistence", "grafana"}
    assert required <= set(CASES)


def test_chart_metadata() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    pyproject = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "foresight"
    assert meta["appVersion"] == pyproject["project"]["version"]
    assert meta["kubeVersion"].startswith(">=1.29")


@pytest.mark.parametrize("case", CASES)
def test_lint_is_clean(case: str) -> None:
    report = helm.lint(CHART, ci_values(case), strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    findings = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert findings == []


@pytest.mark.parametrize("case", CASES)
def test_every_manifest_is_valid_kubernetes(case: str) -> None:
    # With the operator's API: a superset of what renders without it.
    rendered = manifests(ci_values(case), api_versions=MONITORING_API)
    assert rendered.objects
    for obj in rendered.objects:
        if obj["kind"] in OPERATOR_KINDS:
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_crds_are_valid_kubernetes() -> None:
    for obj in crds():
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_crd_is_the_one_the_controller_is_tested_with() -> None:
    shipped = crds()
    assert len(shipped) == 1
    assert shipped[0] == json.loads(json.dumps(crd_manifest()))


def test_operator_resources_only_with_the_operator_api() -> None:
    values = ci_values("prometheus-operator")
    without = manifests(values)
    assert not without.of_kind("ServiceMonitor")
    assert not without.of_kind("PrometheusRule")
    assert "no monitoring.coreos.com/v1" in without.notes

    with_operator = manifests(values, api_versions=MONITORING_API)
    monitor = with_operator.one("ServiceMonitor")
    service = with_operator.one("Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    # foresight_job_pods{job=...} and the re-exported namespace/pod labels must survive.
    assert endpoint["honorLabels"] is True
    assert endpoint["interval"] == "15s"

    rule = with_operator.one("PrometheusRule")
    assert rule["spec"]["groups"] == values["prometheusRule"]["groups"]
    # Templates in annotations reach the operator untouched.
    annotation = rule["spec"]["groups"][0]["rules"][0]["annotations"]["summary"]
    assert "{{ $value }}" in annotation


def test_the_service_monitor_scrapes_only_the_metrics_service() -> None:
    rendered = manifests(ci_values("all-on"), api_versions=MONITORING_API)
    selector = rendered.one("ServiceMonitor")["spec"]["selector"]["matchLabels"]
    matching = [
        s["metadata"]["name"]
        for s in rendered.of_kind("Service")
        if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert matching == ["foresight-fs"]


@pytest.mark.parametrize("case", CASES)
def test_every_object_carries_the_standard_labels(case: str) -> None:
    rendered = manifests(ci_values(case), api_versions=MONITORING_API)
    for obj in rendered.objects:
        labels = obj["metadata"]["labels"]
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels["app.kubernetes.io/name"] in ("foresight", "fs"), where
        assert labels["app.kubernetes.io/instance"] == "foresight", where
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where
        assert labels["app.kubernetes.io/version"] == "0.1.0", where
        assert labels["app.kubernetes.io/part-of"] == "foresight", where
        assert labels["helm.sh/chart"] == "foresight-0.1.0", where
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            namespace = obj["metadata"]["namespace"]
            # Dashboards and Grafana's data source, account and token go where Grafana is.
            elsewhere = obj["kind"] == "ConfigMap" or labels.get(COMPONENT) == "grafana"
            assert namespace == NAMESPACE or elsewhere, where


def test_common_labels_reach_every_object() -> None:
    for obj in manifests(ci_values("all-on"), api_versions=MONITORING_API).objects:
        assert obj["metadata"]["labels"]["team"] == "platform"


def test_selectors_match_the_pods() -> None:
    for case in ("default", "persistence"):
        rendered = manifests(ci_values(case))
        workload = rendered.workload()
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        service = rendered.one("Service", "foresight")
        assert service["spec"]["selector"].items() <= pod_labels.items()
        pdb = rendered.one("PodDisruptionBudget")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def _dashboard_config_maps(values: dict[str, Any]) -> list[dict[str, Any]]:
    rendered = manifests(values)
    return [
        c
        for c in rendered.of_kind("ConfigMap")
        if c["metadata"]["labels"].get("app.kubernetes.io/component") == "dashboards"
    ]


def test_dashboard_config_maps_equal_build_all() -> None:
    expected = build_all()
    shipped = {}
    for config_map in _dashboard_config_maps({}):
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "foresight"
        ((file_name, text),) = config_map["data"].items()
        shipped[file_name] = json.loads(text)
    assert shipped == json.loads(json.dumps(expected))


def test_dashboard_files_are_current() -> None:
    """The chart's JSON files are `foresight dashboards --out helm/foresight/dashboards`."""
    on_disk = {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in (CHART / "dashboards").glob("*.json")
    }
    assert on_disk == json.loads(json.dumps(build_all())), (
        "regenerate with: foresight dashboards --out helm/foresight/dashboards"
    )


def test_dashboard_label_folder_and_namespace_are_configurable() -> None:
    values = {
        "dashboards": {
            "label": "grafana/dashboard",
            "labelValue": "yes",
            "folderAnnotation": "k8s-sidecar-target-directory",
            "folder": "/tmp/dashboards/foresight",
            "namespace": "grafana",
        }
    }
    config_maps = _dashboard_config_maps(values)
    assert len(config_maps) == len(build_all())
    for config_map in config_maps:
        meta = config_map["metadata"]
        assert meta["labels"]["grafana/dashboard"] == "yes"
        assert "grafana_dashboard" not in meta["labels"]
        assert meta["annotations"]["k8s-sidecar-target-directory"] == "/tmp/dashboards/foresight"
        assert meta["namespace"] == "grafana"
    assert _dashboard_config_maps({"dashboards": {"enabled": False}}) == []


def test_rules_config_map_is_mounted_where_rules_files_points() -> None:
    values = ci_values("all-on")
    rendered = manifests(values)
    rules = rendered.one("ConfigMap", "foresight-fs-rules")
    assert yaml.safe_load(rules["data"]["shop.yaml"]) == values["alertRules"]["shop.yaml"]
    settings = yaml.safe_load(rendered.settings_text())
    mounts = {m["name"]: m["mountPath"] for m in rendered.container()["volumeMounts"]}
    assert settings["rules"]["files"] == [mounts["rules"]]
    volumes = rendered.workload()["spec"]["template"]["spec"]["volumes"]
    assert {"name": "rules", "configMap": {"name": "foresight-fs-rules"}} in volumes


def test_persistence_gives_every_replica_its_own_claim() -> None:
    rendered = manifests(ci_values("persistence"))
    assert not rendered.of_kind("Deployment")
    sts = rendered.one("StatefulSet")
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "standard"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    volumes = {v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert "data" not in volumes  # from the claim template, not an emptyDir
    headless = rendered.one("Service", "foresight-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == "foresight-headless"


def test_default_store_is_an_empty_dir() -> None:
    rendered = manifests({})
    deployment = rendered.one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["emptyDir"] == {"sizeLimit": "4Gi"}


def test_the_image_is_pinned_by_digest_when_given() -> None:
    assert manifests({}).container()["image"] == "foresight:0.1.0"
    image = manifests(ci_values("all-on")).container()["image"]
    assert image == (
        "registry.example/foresight@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )


def test_notes_tell_what_to_do_next() -> None:
    notes = manifests({}).notes
    assert "kubectl apply -f examples/" in notes
    assert "grafana_dashboard" in notes
    assert "secret_file" in notes
    assert "honor_labels: true" in notes


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"image": {"tag": 1}}, "/image/tag"),
        ({"persistence": {"enabled": "yes"}}, "/persistence/enabled"),
        ({"serviceMonitor": {"enabeld": True}}, "enabeld"),
        ({"config": {"stor": {}}}, "additional properties 'stor' not allowed"),
        ({"config": {"store": {"flush_interval_seconds": 9}}}, "flush_interval_seconds"),
        ({"config": {"server": {"port": "http"}}}, "/config/server"),
        ({"config": {"webhook": {"secret": "hunter2"}}}, "/config/webhook/secret"),
        ({"alertRules": {"rules.txt": {"groups": []}}}, "rules.txt"),
    ],
)
def test_schema_rejects_unknown_keys_and_wrong_types(values: dict[str, Any], message: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert message in str(caught.value)
    # An install fails the same way.
    with pytest.raises(helm.HelmError):
        render(values)


def test_schema_accepts_every_ci_values_file() -> None:
    with helm.Chart.load(CHART) as chart:
        for case in CASES:
            chart.validate_schema(ci_values(case))


def test_secret_values_are_refused_in_the_settings_config_map() -> None:
    webhook = {"url": "https://hooks.example", "secret": "hunter2"}
    values = {"config": {"notify": {"receivers": [{"name": "a", "webhook_configs": [webhook]}]}}}
    with pytest.raises(helm.HelmError, match="secret"):
        render(values)


def test_store_outside_the_data_volume_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"config\.store\.data_dir: /data is not below"):
        render({"config": {"store": {"data_dir": "/data"}}})


def test_values_file_parses() -> None:
    values = yaml.safe_load(Path(CHART / "values.yaml").read_text(encoding="utf-8"))
    with helm.Chart.load(CHART) as chart:
        assert chart.values.keys() == values.keys()


def test_chart_readme_documents_every_top_level_value() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    missing = [key for key in values if f"`{key}" not in readme]
    assert missing == []
