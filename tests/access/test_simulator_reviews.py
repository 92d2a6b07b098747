"""The simulator's SubjectAccessReview and TokenReview over the official client: RBAC's rules
for namespaces, resource names, subresources and non-resource URLs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from collectors.kube import api_client
from runtime.clock import VirtualClock
from simulator.cluster import SimulatedCluster
from simulator.scenario import parse_scenario
from tests.access.conftest import SCENARIO
from tests.controller.conftest import START, settings_for

ADMIN_TOKEN = "simulator-admin-token-0123"


def _role(name: str, rule: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "rules": [rule]}


def _binding(
    name: str, role_kind: str, subject: dict[str, str], role: str | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_kind,
            "name": role or name,
        },
        "subjects": [subject],
    }


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[k8s.ApiClient]:
    clock = VirtualClock(start=START, autoadvance=False)
    cluster = SimulatedCluster(parse_scenario(SCENARIO, "access.yaml"), clock, token=ADMIN_TOKEN)
    await cluster.start(run_loop=False)
    cluster.write_kubeconfig(tmp_path / "kubeconfig")
    client = api_client(settings_for(tmp_path, tmp_path / "kubeconfig").kubernetes)
    rbac = k8s.RbacAuthorizationV1Api(client)
    scaler_rule = {
        "apiGroups": ["apps"],
        "resources": ["deployments/scale"],
        "resourceNames": ["web"],
        "verbs": ["update"],
    }
    debug_rule = {"nonResourceURLs": ["/debug/*"], "verbs": ["get"]}
    objects: list[tuple[Any, tuple[Any, ...]]] = [
        (rbac.create_namespaced_role, ("shop", _role("scaler", scaler_rule))),
        (
            rbac.create_namespaced_role_binding,
            ("shop", _binding("scaler", "Role", {"kind": "User", "name": "dana"})),
        ),
        (rbac.create_cluster_role, (_role("debug", debug_rule),)),
        (
            rbac.create_cluster_role_binding,
            (_binding("debug", "ClusterRole", {"kind": "Group", "name": "debuggers"}),),
        ),
        # A binding whose role does not exist grants nothing.
        (
            rbac.create_cluster_role_binding,
            (_binding("dangling", "ClusterRole", {"kind": "User", "name": "erin"}, "gone"),),
        ),
    ]
    for fn, args in objects:
        await asyncio.to_thread(fn, *args)
    try:
        yield client
    finally:
        client.close()
        await cluster.stop()
        await clock.aclose()


def _resource(verb: str, resource: str, name: str = "", namespace: str = "shop") -> Any:
    return k8s.V1ResourceAttributes(
        group="apps",
        resource=resource,
        subresource="scale",
        name=name,
        namespace=namespace,
        verb=verb,
    )


@pytest.mark.parametrize(
    ("user", "groups", "attributes", "allowed"),
    [
        ("dana", [], {"resource_attributes": _resource("update", "deployments", "web")}, True),
        ("dana", [], {"resource_attributes": _resource("update", "deployments", "api")}, False),
        ("dana", [], {"resource_attributes": _resource("patch", "deployments", "web")}, False),
        (
            "dana",
            [],
            {"resource_attributes": _resource("update", "deployments", "web", namespace="ops")},
            False,
        ),
        (
            "frank",
            ["debuggers"],
            {
                "non_resource_attributes": k8s.V1NonResourceAttributes(
                    path="/debug/pprof", verb="get"
                )
            },
            True,
        ),
        (
            "frank",
            ["debuggers"],
            {"non_resource_attributes": k8s.V1NonResourceAttributes(path="/metrics", verb="get")},
            False,
        ),
        ("erin", [], {"resource_attributes": _resource("update", "deployments", "web")}, False),
        ("root", ["system:masters"], {"resource_attributes": _resource("delete", "nodes")}, True),
    ],
)
async def test_subject_access_reviews(
    api: k8s.ApiClient, user: str, groups: list[str], attributes: dict[str, Any], allowed: bool
) -> None:
    review = k8s.V1SubjectAccessReview(
        spec=k8s.V1SubjectAccessReviewSpec(user=user, groups=groups, **attributes)
    )
    answer = await asyncio.to_thread(
        k8s.AuthorizationV1Api(api).create_subject_access_review, review
    )
    assert answer.status.allowed is allowed
    assert not answer.status.denied


async def test_token_reviews(api: k8s.ApiClient) -> None:
    authn = k8s.AuthenticationV1Api(api)

    def review(token: str) -> Any:
        return authn.create_token_review(k8s.V1TokenReview(spec=k8s.V1TokenReviewSpec(token=token)))

    admin = await asyncio.to_thread(review, ADMIN_TOKEN)
    assert admin.status.authenticated
    assert admin.status.user.username == "kubernetes-admin"
    assert "system:masters" in admin.status.user.groups
    unknown = await asyncio.to_thread(review, "not-a-token")
    assert not unknown.status.authenticated and unknown.status.error == "invalid bearer token"
    short = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=60)
    )
    core = k8s.CoreV1Api(api)
    sa = k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="bot"))
    await asyncio.to_thread(core.create_namespaced_service_account, "ops", sa)
    with pytest.raises(k8s.ApiException) as refused:
        await asyncio.to_thread(core.create_namespaced_service_account_token, "bot", "ops", short)
    assert refused.value.status == 422
    with pytest.raises(k8s.ApiException) as missing:
        await asyncio.to_thread(
            core.create_namespaced_service_account_token, "nobody", "ops", short
        )
    assert missing.value.status == 404


async def test_a_protobuf_body_is_refused_as_unsupported(api: k8s.ApiClient) -> None:
    """kubectl's imperative commands send protobuf; the simulator speaks JSON and YAML and says
    so (kubectl create --raw, apply -f and the kubernetes client send JSON)."""
    host = api.configuration.host
    headers = {
        "Authorization": f"Bearer {ADMIN_TOKEN}",
        "Content-Type": "application/vnd.kubernetes.protobuf",
    }
    async with httpx.AsyncClient(base_url=host, headers=headers) as http:
        answer = await http.post(
            "/api/v1/namespaces/ops/serviceaccounts/bot/token", content=b"k8s\0"
        )
    assert answer.status_code == 415
    assert answer.json()["reason"] == "UnsupportedMediaType"
