"""The chart's RBAC is exactly what foresight calls, and nothing broader."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.helmchart import CI_VALUES, NAMESPACE, Manifests, ci_values, manifests

CASES = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)

# What the code calls: collectors/cluster.py (list/watch of the model), collectors/kubelet.py
# (nodes/metrics on the kubelet), autoscaler/controller/kube_actions.py (scale, resize,
# template patch, status, events, the autoscalers and VPAs).
EXPECTED_CLUSTER: set[Rule] = {
    *(
        (g, r, v)
        for g, r in [
            ("", "nodes"),
            ("", "pods"),
            ("apps", "deployments"),
            ("apps", "statefulsets"),
            ("apps", "daemonsets"),
            ("apps", "replicasets"),
            ("batch", "jobs"),
            ("batch", "cronjobs"),
            ("autoscaling", "horizontalpodautoscalers"),
        ]
        for v in ("list", "watch")
    ),
    ("", "nodes/metrics", "get"),
    ("", "nodes/stats", "get"),
    *(
        ("apps", f"{kind}/scale", v)
        for kind in ("deployments", "statefulsets")
        for v in ("get", "update", "patch")
    ),
    ("", "pods/resize", "patch"),
    ("apps", "deployments", "patch"),
    ("apps", "statefulsets", "patch"),
    ("", "events", "create"),
    ("", "events", "patch"),
    *(("foresight.dev", "predictiveautoscalers", v) for v in ("get", "list", "watch")),
    *(("foresight.dev", "predictiveautoscalers/status", v) for v in ("get", "update", "patch")),
    ("autoscaling.k8s.io", "verticalpodautoscalers", "list"),
    # server.auth kubernetes: the API's callers (access/kube.py).
    ("authentication.k8s.io", "tokenreviews", "create"),
    ("authorization.k8s.io", "subjectaccessreviews", "create"),
}
REVIEWS = {
    ("authentication.k8s.io", "tokenreviews", "create"),
    ("authorization.k8s.io", "subjectaccessreviews", "create"),
}
# The rights access/ asks for (autoscaler/service.py ALERT_API_RESOURCES), for users to bind.
EDITOR = {
    ("foresight.dev", "silences", "create"),
    ("foresight.dev", "silences", "delete"),
    *(
        ("foresight.dev", r, v)
        for r in ("silences", "rules", "alerts", "queries")
        for v in ("get", "list")
    ),
}
VIEWER = {
    ("foresight.dev", r, v)
    for r in ("silences", "rules", "alerts", "queries")
    for v in ("get", "list")
}
API_ROLES = ("-silence-editor", "-viewer")


def expand(rules: list[dict[str, Any]]) -> set[Rule]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def own_roles(rendered: Manifests) -> list[dict[str, Any]]:
    """The roles foresight's own ServiceAccount is bound to (not the API's, for users)."""
    return [
        r
        for r in rendered.of_kind("ClusterRole") + rendered.of_kind("Role")
        if not r["metadata"]["name"].endswith(API_ROLES)
    ]


def cluster_rules(values: dict[str, Any]) -> list[dict[str, Any]]:
    (role,) = [r for r in own_roles(manifests(values)) if r["kind"] == "ClusterRole"]
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def test_cluster_role_is_exactly_what_the_code_uses() -> None:
    assert expand(cluster_rules({})) == EXPECTED_CLUSTER


def test_vertical_pod_autoscalers_are_optional() -> None:
    rules = expand(cluster_rules({"rbac": {"verticalPodAutoscalers": False}}))
    assert rules == EXPECTED_CLUSTER - {("autoscaling.k8s.io", "verticalpodautoscalers", "list")}


@pytest.mark.parametrize("case", CASES)
def test_no_wildcards_no_node_proxy_no_secrets(case: str) -> None:
    rendered = manifests(ci_values(case))
    for role in own_roles(rendered):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert not any("*" in item for item in rule.get(field, [])), (role, rule)
            assert "nonResourceURLs" not in rule
            resources = set(rule.get("resources", []))
            assert "nodes/proxy" not in resources
            assert not resources & {"secrets", "configmaps", "serviceaccounts/token"}
            assert not set(rule["verbs"]) & {"escalate", "bind", "impersonate", "delete"}


def test_reviews_only_with_kubernetes_auth() -> None:
    values = {"config": {"server": {"auth": "token-file", "token_file": "/etc/t/tokens"}}}
    assert expand(cluster_rules(values)) == EXPECTED_CLUSTER - REVIEWS


def test_roles_for_the_apis_users() -> None:
    rendered = manifests({})
    editor = rendered.one("ClusterRole", "foresight-silence-editor")
    assert expand(editor["rules"]) == EDITOR
    viewer = rendered.one("ClusterRole", "foresight-viewer")
    assert expand(viewer["rules"]) == VIEWER
    assert [r for r in viewer["rules"] if "nonResourceURLs" in r] == [
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
    ]
    # No subject is bound unless listed.
    assert [b["metadata"]["name"] for b in rendered.of_kind("ClusterRoleBinding")] == ["foresight"]


def test_api_access_binds_the_subjects_listed() -> None:
    rendered = manifests(ci_values("all-on"))
    name = next(
        r["metadata"]["name"][: -len("-viewer")]
        for r in rendered.of_kind("ClusterRole")
        if r["metadata"]["name"].endswith("-viewer")
    )
    editors = rendered.one("ClusterRoleBinding", f"{name}-silence-editor")
    assert editors["roleRef"]["name"] == f"{name}-silence-editor"
    assert editors["subjects"] == [
        {"kind": "Group", "name": "sre", "apiGroup": "rbac.authorization.k8s.io"}
    ]
    viewers = rendered.one("ClusterRoleBinding", f"{name}-viewer")
    assert viewers["subjects"] == [
        {"kind": "ServiceAccount", "name": "grafana", "namespace": "monitoring"}
    ]


def test_node_proxy_only_when_kubelets_are_reached_through_it() -> None:
    values = {"config": {"collectors": {"kubelet_via_proxy": True}}}
    assert expand(cluster_rules(values)) == EXPECTED_CLUSTER | {("", "nodes/proxy", "get")}


def test_the_lease_role_is_namespaced_and_names_its_lease() -> None:
    rendered = manifests({})
    role = rendered.one("Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert expand(role["rules"]) == {
        ("coordination.k8s.io", "leases", v) for v in ("create", "get", "update")
    }
    named = [r for r in role["rules"] if "resourceNames" in r]
    assert named == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["foresight-leader"],
            "verbs": ["get", "update"],
        }
    ]
    settings_lease = "name: foresight-leader"
    assert settings_lease in rendered.settings_text()


def test_a_lease_name_from_config_is_the_one_the_role_grants() -> None:
    rendered = manifests(ci_values("all-on"))
    (named,) = [r for r in rendered.one("Role")["rules"] if "resourceNames" in r]
    assert named["resourceNames"] == ["fs-lease"]
    assert "name: fs-lease" in rendered.settings_text()


def for_grafana(obj: dict[str, Any]) -> bool:
    """An object of Grafana's data source (grafana.datasource), not of foresight's pods."""
    return bool(obj["metadata"]["labels"].get("app.kubernetes.io/component") == "grafana")


@pytest.mark.parametrize("case", CASES)
def test_bindings_bind_the_pods_service_account(case: str) -> None:
    rendered = manifests(ci_values(case))
    account = rendered.workload()["spec"]["template"]["spec"]["serviceAccountName"]
    (own_account,) = [a for a in rendered.of_kind("ServiceAccount") if not for_grafana(a)]
    assert own_account["metadata"]["name"] == account
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        (binding,) = [
            b
            for b in rendered.of_kind(kind)
            if not b["metadata"]["name"].endswith(API_ROLES) and not for_grafana(b)
        ]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]
        assert binding["roleRef"]["kind"] == role_kind
        (role,) = [r for r in own_roles(rendered) if r["kind"] == role_kind]
        assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_rbac_can_be_left_to_the_operator() -> None:
    rendered = manifests(
        {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "existing"}}
    )
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"):
        assert rendered.of_kind(kind) == []
    assert rendered.workload()["spec"]["template"]["spec"]["serviceAccountName"] == "existing"
