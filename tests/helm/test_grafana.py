"""Grafana straight on foresight (grafana.datasource): a data source for Grafana's sidecar on
the query API of the Service, the token Grafana sends, and Grafana's way through the
NetworkPolicy."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from autoscaler.settings import Settings
from dashboards import build_all
from tests.helm.helmchart import NAMESPACE, Manifests, ci_values, manifests, walk
from tests.helm.test_rbac import VIEWER, expand, for_grafana

ON: dict[str, Any] = {"grafana": {"datasource": {"enabled": True}}}
PICKED = {"type": "prometheus", "uid": "${datasource}"}
BUILT_IN = {"type": "grafana", "uid": "-- Grafana --"}


def with_on(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the data source enabled (nested keys merged, not replaced)."""
    merged: dict[str, Any] = json.loads(json.dumps(values))
    grafana = merged.setdefault("grafana", {})
    grafana.setdefault("datasource", {})["enabled"] = True
    return merged


def datasource_config_map(rendered: Manifests) -> dict[str, Any]:
    (config_map,) = [c for c in rendered.of_kind("ConfigMap") if for_grafana(c)]
    assert isinstance(config_map, dict)
    return config_map


def datasource(rendered: Manifests) -> dict[str, Any]:
    """The one data source the chart provisions, as Grafana reads it."""
    (text,) = datasource_config_map(rendered)["data"].values()
    provisioning = yaml.safe_load(text)
    assert provisioning["apiVersion"] == 1
    (source,) = provisioning["datasources"]
    assert isinstance(source, dict)
    return source


def api_url(rendered: Manifests, scheme: str) -> str:
    """Where the Service publishes the API: its name, namespace and the port named `api`."""
    (service,) = [s for s in rendered.of_kind("Service") if "clusterIP" not in s["spec"]]
    (port,) = [p["port"] for p in service["spec"]["ports"] if p["name"] == "api"]
    meta = service["metadata"]
    return f"{scheme}://{meta['name']}.{meta['namespace']}.svc:{port}"


def test_off_by_default_renders_nothing() -> None:
    rendered = manifests({})
    assert [o for o in rendered.objects if for_grafana(o)] == []
    assert rendered.of_kind("Secret") == []
    rules = rendered.one("NetworkPolicy")["spec"]["ingress"]
    assert len(rules) == 2  # metrics and api, nothing for Grafana
    assert manifests({"grafana": {"datasource": {"enabled": False}}}).objects == rendered.objects


def test_the_data_source_points_at_the_services_api_port() -> None:
    rendered = manifests(ON)
    source = datasource(rendered)
    assert (
        source["url"] == api_url(rendered, "http") == "http://foresight.monitoring-system.svc:8081"
    )
    assert source["type"] == "prometheus"
    assert source["access"] == "proxy"
    assert (source["name"], source["uid"], source["isDefault"]) == ("foresight", "foresight", False)
    assert source["jsonData"] == {
        "httpMethod": "POST",
        "timeInterval": "15s",
        "prometheusType": "Prometheus",
        "prometheusVersion": "2.42.0",
        "httpHeaderName1": "Authorization",
    }
    token = "Bearer $__file{/etc/secrets/foresight-grafana/token}"
    assert source["secureJsonData"] == {"httpHeaderValue1": token}


def test_the_url_follows_the_service_port_and_names() -> None:
    values = with_on({"fullnameOverride": "fs", "service": {"apiPort": 9443}})
    rendered = manifests(values, namespace="ops")
    assert datasource(rendered)["url"] == api_url(rendered, "http") == "http://fs.ops.svc:9443"


def test_tls_switches_to_https_with_the_ca_grafana_mounts() -> None:
    rendered = manifests(ci_values("grafana"))
    source = datasource(rendered)
    assert source["url"] == api_url(rendered, "https")
    assert source["url"].startswith("https://")
    assert source["jsonData"]["tlsAuthWithCACert"] is True
    assert "tlsSkipVerify" not in source["jsonData"]
    assert source["secureJsonData"]["tlsCACert"] == "$__file{/etc/secrets/foresight-ca/ca.crt}"
    assert source["isDefault"] is True
    skip = {"apiTls": {"existingSecret": "tls"}, "grafana": {"datasource": {"tlsSkipVerify": True}}}
    source = datasource(manifests(with_on(skip)))
    assert source["url"].startswith("https://")
    assert source["jsonData"]["tlsSkipVerify"] is True
    assert "tlsCACert" not in source["secureJsonData"]
    # Over plain HTTP the TLS options mean nothing and are left out.
    plain = datasource(manifests(with_on({"grafana": {"datasource": {"tlsSkipVerify": True}}})))
    assert "tlsSkipVerify" not in plain["jsonData"]


def test_time_interval_and_query_timeout_follow_the_settings() -> None:
    default = datasource(manifests(ON))["jsonData"]
    assert default["timeInterval"] == f"{Settings().collectors.scrape_interval_seconds:.0f}s"
    # Unset, foresight applies its own limit and Grafana sends none.
    assert "queryTimeout" not in default
    ci = datasource(manifests(ci_values("grafana")))["jsonData"]
    assert (ci["timeInterval"], ci["queryTimeout"]) == ("30s", "45s")
    config = {
        "collectors": {"scrape_interval_seconds": 2.5},
        "query_api": {"timeout_seconds": 0.25},
    }
    fractional = datasource(manifests(with_on({"config": config})))["jsonData"]
    assert (fractional["timeInterval"], fractional["queryTimeout"]) == ("2500ms", "250ms")


def test_a_token_secret_of_a_viewer_account_in_grafanas_namespace() -> None:
    rendered = manifests(ON)
    account = rendered.one("ServiceAccount", "foresight-grafana")
    assert account["metadata"]["namespace"] == "monitoring"
    assert account["automountServiceAccountToken"] is False
    secret = rendered.one("Secret", "foresight-grafana-token")
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["namespace"] == "monitoring"
    assert secret["metadata"]["annotations"] == {
        "kubernetes.io/service-account.name": "foresight-grafana"
    }
    binding = rendered.one("ClusterRoleBinding", "foresight-grafana")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "foresight-grafana", "namespace": "monitoring"}
    ]
    role = rendered.one("ClusterRole", binding["roleRef"]["name"])
    assert binding["roleRef"]["kind"] == "ClusterRole"
    # The query API asks SubjectAccessReview for `get queries.foresight.dev`; reading only.
    assert ("foresight.dev", "queries", "get") in expand(role["rules"])
    assert expand(role["rules"]) == VIEWER


def test_the_config_map_holds_no_token() -> None:
    rendered = manifests(ci_values("grafana"))
    config_map = datasource_config_map(rendered)
    for _, value in walk(datasource(rendered).get("secureJsonData", {})):
        if isinstance(value, str):
            assert value.removeprefix("Bearer ").startswith("$__file{"), value
    assert config_map["metadata"]["namespace"] == "observability"


def test_the_sidecar_label_and_the_names_are_configurable() -> None:
    rendered = manifests(ci_values("all-on"))
    config_map = datasource_config_map(rendered)
    meta = config_map["metadata"]
    assert meta["labels"]["grafana/datasource"] == "yes"
    assert "grafana_datasource" not in meta["labels"]
    assert meta["labels"]["team"] == "platform"
    assert meta["annotations"] == {"example.com/source": "foresight"}
    source = datasource(rendered)
    assert (source["name"], source["uid"]) == ("foresight-prod", "foresight-prod")
    assert (
        source["url"]
        == api_url(rendered, "http")
        == "http://foresight-fs.monitoring-system.svc:9443"
    )
    config_map = datasource_config_map(manifests(ON))
    assert config_map["metadata"]["labels"]["grafana_datasource"] == "1"
    assert config_map["metadata"]["name"] == "foresight-grafana-datasource"


def test_grafana_namespace_defaults_to_the_release_namespace_when_empty() -> None:
    rendered = manifests(with_on({"grafana": {"namespace": ""}}))
    for obj in rendered.objects:
        if for_grafana(obj) and obj["kind"] != "ClusterRoleBinding":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]


@pytest.mark.parametrize(
    ("auth", "account"),
    [("token-file", False), ("none", False), ("kubernetes", True)],
)
def test_the_token_follows_how_the_api_checks_callers(auth: str, account: bool) -> None:
    server: dict[str, Any] = {"auth": auth}
    if auth == "token-file":
        server["token_file"] = "/etc/foresight/secrets/tokens/tokens.csv"
    rendered = manifests(with_on({"config": {"server": server}}))
    kinds = {o["kind"] for o in rendered.objects if for_grafana(o)}
    expected = {"ConfigMap", "ServiceAccount", "Secret", "ClusterRoleBinding"}
    assert kinds == (expected if account else {"ConfigMap"})
    source = datasource(rendered)
    if auth == "none":
        assert "secureJsonData" not in source
        assert "httpHeaderName1" not in source["jsonData"]
    else:
        # token-file: a token of that file, in a Secret mounted at the same path.
        assert source["secureJsonData"]["httpHeaderValue1"].startswith("Bearer $__file{")


def test_without_rbac_the_binding_is_left_to_the_operator() -> None:
    rendered = manifests(with_on({"rbac": {"create": False}}))
    assert rendered.of_kind("ClusterRoleBinding") == []
    assert rendered.one("Secret", "foresight-grafana-token")


def grafana_rule(rendered: Manifests) -> dict[str, Any]:
    rules = rendered.one("NetworkPolicy")["spec"]["ingress"]
    (rule,) = [
        r for r in rules if "app.kubernetes.io/name" in json.dumps(r) and "grafana" in json.dumps(r)
    ]
    assert isinstance(rule, dict)
    return rule


def test_the_network_policy_admits_grafana_to_the_api_port() -> None:
    rule = grafana_rule(manifests(ci_values("grafana")))
    assert rule["ports"] == [{"port": "api", "protocol": "TCP"}]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "grafana",
                    "app.kubernetes.io/instance": "kube-prometheus-stack",
                }
            },
        }
    ]
    # Even with every other port closed, Grafana still gets its rule.
    closed: dict[str, Any] = {"networkPolicy": {"metrics": {"from": []}, "api": {"from": []}}}
    (only,) = manifests(with_on(closed)).one("NetworkPolicy")["spec"]["ingress"]
    assert only["from"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "grafana"}}
    assert manifests(with_on({"networkPolicy": {"enabled": False}})).of_kind("NetworkPolicy") == []


def test_the_dashboards_take_any_prometheus_data_source() -> None:
    """Every query of the six dashboards goes to the data source picked in their
    `datasource` variable, which lists every Prometheus data source: the provisioned one
    needs no particular uid."""
    dashboards = json.loads(json.dumps(build_all()))
    assert len(dashboards) == 6
    for name, dashboard in dashboards.items():
        variables = dashboard["templating"]["list"]
        picker = variables[0]
        assert (picker["name"], picker["type"], picker["query"]) == (
            "datasource",
            "datasource",
            "prometheus",
        ), name
        for path, value in walk(dashboard):
            if path.endswith(("datasource", "dataSource")):
                assert value in (PICKED, BUILT_IN), (name, path)
                # Grafana's own annotations (built-in, no query) are the one exception.
                assert value == PICKED or path.startswith("annotations."), (name, path)
    assert datasource(manifests(ON))["type"] == picker["query"]


def test_notes_say_where_grafana_finds_its_token() -> None:
    notes = manifests(ON).notes
    assert 'Grafana data source "foresight" (uid foresight) on http://foresight.' in notes
    assert "mount the Secret foresight-grafana-token there" in notes
    assert "/etc/secrets/foresight-grafana/token" in notes
    assert "No Prometheus is needed for the dashboards" in notes
    assert "Grafana data source" not in manifests({}).notes
    assert "grafana.datasource.enabled=true" in manifests({}).notes
