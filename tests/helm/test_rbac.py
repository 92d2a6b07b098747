"""The chart's RBAC is exactly what foresight calls, and nothing broader."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.helmchart import CI_VALUES, NAMESPACE, ci_values, manifests

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
}


def expand(rules: list[dict[str, Any]]) -> set[Rule]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def cluster_rules(values: dict[str, Any]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = manifests(values).one("ClusterRole")["rules"]
    return rules


def test_cluster_role_is_exactly_what_the_code_uses() -> None:
    assert expand(cluster_rules({})) == EXPECTED_CLUSTER


def test_vertical_pod_autoscalers_are_optional() -> None:
    rules = expand(cluster_rules({"rbac": {"verticalPodAutoscalers": False}}))
    assert rules == EXPECTED_CLUSTER - {("autoscaling.k8s.io", "verticalpodautoscalers", "list")}


@pytest.mark.parametrize("case", CASES)
def test_no_wildcards_no_node_proxy_no_secrets(case: str) -> None:
    rendered = manifests(ci_values(case))
    for role in rendered.of_kind("ClusterRole") + rendered.of_kind("Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert not any("*" in item for item in rule.get(field, [])), (role, rule)
            assert "nonResourceURLs" not in rule
            resources = set(rule.get("resources", []))
            assert "nodes/proxy" not in resources
            assert not resources & {"secrets", "configmaps", "serviceaccounts/token"}
            assert not set(rule["verbs"]) & {"escalate", "bind", "impersonate", "delete"}


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


@pytest.mark.parametrize("case", CASES)
def test_bindings_bind_the_pods_service_account(case: str) -> None:
    rendered = manifests(ci_values(case))
    account = rendered.workload()["spec"]["template"]["spec"]["serviceAccountName"]
    assert rendered.one("ServiceAccount")["metadata"]["name"] == account
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = rendered.one(kind)
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]
        assert binding["roleRef"]["kind"] == role_kind
        assert binding["roleRef"]["name"] == rendered.one(role_kind)["metadata"]["name"]


def test_rbac_can_be_left_to_the_operator() -> None:
    rendered = manifests(
        {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "existing"}}
    )
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"):
        assert rendered.of_kind(kind) == []
    assert rendered.workload()["spec"]["template"]["spec"]["serviceAccountName"] == "existing"
