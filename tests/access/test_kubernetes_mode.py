"""``server.auth: kubernetes`` end to end: ServiceAccount tokens from the TokenRequest API,
checked by the simulator's TokenReview, rights from ClusterRoles and bindings through its
SubjectAccessReview, all over the official client; answers cached for their TTL; API server
errors retried, then 503, never cached."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from simulator.faults import FaultSpec
from tests.access.conftest import SILENCE, Served, bearer, serve
from tests.helm.helmchart import manifests

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "silence-editor-binding.yaml"
EDITOR_RULES = [
    {"apiGroups": ["foresight.dev"], "resources": ["silences"], "verbs": ["create", "delete"]},
    {
        "apiGroups": ["foresight.dev"],
        "resources": ["silences", "rules", "alerts"],
        "verbs": ["get", "list"],
    },
]
VIEWER_RULES = [
    {"apiGroups": ["foresight.dev"], "resources": ["*"], "verbs": ["get", "list"]},
    {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
]


async def grant(s: Served, role: str, rules: list[dict[str, Any]], subject: dict[str, str]) -> None:
    """A ClusterRole with ``rules`` and a ClusterRoleBinding of it to ``subject``."""
    rbac = k8s.RbacAuthorizationV1Api(s.api)
    cluster_role: Any = {"metadata": {"name": role}, "rules": rules}
    binding: Any = {
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [subject],
    }
    await s.call(rbac.create_cluster_role, cluster_role)
    await s.call(rbac.create_cluster_role_binding, binding)


def account(namespace: str, name: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "namespace": namespace, "name": name}


async def test_service_account_tokens_and_rbac(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(tmp_path, protect_metrics=True) as s:
        editor = await s.token_for("ops", "editor")
        viewer = await s.token_for("shop", "viewer")
        outsider = await s.token_for("shop", "outsider")
        await grant(s, "foresight-silence-editor", EDITOR_RULES, account("ops", "editor"))
        # Viewing is granted to a group: every ServiceAccount of namespace "shop".
        await grant(
            s,
            "foresight-viewer",
            VIEWER_RULES,
            {"kind": "Group", "name": "system:serviceaccounts:shop"},
        )
        assert (await s.http.post("/api/v2/silences", json=SILENCE)).status_code == 401
        garbage = await s.http.post("/api/v2/silences", json=SILENCE, headers=bearer("x" * 40))
        assert garbage.status_code == 401
        refused = await s.http.post("/api/v2/silences", json=SILENCE, headers=bearer(viewer))
        assert refused.status_code == 403
        assert refused.json()["error"] == (
            'forbidden: User "system:serviceaccount:shop:viewer" cannot create resource '
            '"silences" in API group "foresight.dev"'
        )
        created = await s.http.post("/api/v2/silences", json=SILENCE, headers=bearer(editor))
        assert created.status_code == 200, created.text
        sid = created.json()["silenceID"]
        listed = await s.http.get("/api/v2/silences", headers=bearer(outsider))
        assert [x["id"] for x in listed.json()] == [sid]  # the group grant
        assert (await s.http.get("/api/v1/rules", headers=bearer(editor))).status_code == 200
        deleted = await s.http.delete(f"/api/v2/silence/{sid}", headers=bearer(viewer))
        assert deleted.status_code == 403
        assert (
            await s.http.delete(f"/api/v2/silence/{sid}", headers=bearer(editor))
        ).status_code == 200
        # /metrics: a non-resource URL rule.
        assert (await s.metrics.get("/metrics")).status_code == 401
        assert (await s.metrics.get("/metrics", headers=bearer(editor))).status_code == 403
        assert (await s.metrics.get("/metrics", headers=bearer(viewer))).status_code == 200
    # Refusals are logged, at every level nothing shows a token.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "cannot create resource" in logged
    for token in (editor, viewer, outsider, "x" * 40):
        assert token not in logged


async def test_answers_are_cached_for_their_ttl(tmp_path: Path) -> None:
    async with serve(tmp_path, auth_cache_seconds=30, auth_deny_cache_seconds=5) as s:
        editor = await s.token_for("ops", "editor")
        await grant(s, "editor", EDITOR_RULES, account("ops", "editor"))
        post = lambda: s.http.post("/api/v2/silences", json=SILENCE, headers=bearer(editor))  # noqa: E731
        assert (await post()).status_code == 200
        await s.call(k8s.RbacAuthorizationV1Api(s.api).delete_cluster_role_binding, "editor")
        s.clock.advance(29)
        assert (await post()).status_code == 200  # still the cached answer
        s.clock.advance(2)
        assert (await post()).status_code == 403  # asked again: the binding is gone
        await grant_binding_again(s)
        s.clock.advance(4)
        assert (await post()).status_code == 403  # the refusal is cached for 5 s
        s.clock.advance(2)
        assert (await post()).status_code == 200


async def grant_binding_again(s: Served) -> None:
    binding: Any = {
        "metadata": {"name": "editor"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "editor",
        },
        "subjects": [account("ops", "editor")],
    }
    await s.call(k8s.RbacAuthorizationV1Api(s.api).create_cluster_role_binding, binding)


async def test_a_deleted_service_account_loses_access(tmp_path: Path) -> None:
    async with serve(tmp_path, auth_cache_seconds=0, auth_deny_cache_seconds=0) as s:
        editor = await s.token_for("ops", "editor")
        await grant(s, "editor", EDITOR_RULES, account("ops", "editor"))
        post = lambda: s.http.post("/api/v2/silences", json=SILENCE, headers=bearer(editor))  # noqa: E731
        assert (await post()).status_code == 200
        await s.call(k8s.CoreV1Api(s.api).delete_namespaced_service_account, "editor", "ops")
        assert (await post()).status_code == 401


async def test_api_errors_are_retried_then_503_and_not_cached(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(tmp_path, autoadvance=True) as s:
        editor = await s.token_for("ops", "editor")
        await grant(s, "editor", EDITOR_RULES, account("ops", "editor"))
        start = s.clock.now() - s.cluster.faults.start
        # Two failed reviews, then the third attempt succeeds (retries 0.1 s, then 0.2 s).
        s.cluster.faults.add(
            FaultSpec(type="api-error", at=start, duration=0.25, resources=("tokenreviews",))
        )
        post = lambda: s.http.post("/api/v2/silences", json=SILENCE, headers=bearer(editor))  # noqa: E731
        with caplog.at_level(logging.WARNING, "collectors.kube"):
            assert (await post()).status_code == 200
        retries = [r.getMessage() for r in caplog.records if r.name == "collectors.kube"]
        assert [m.split(";")[1].strip() for m in retries] == [
            "attempt 1 of 2, retrying in 0.1 s",
            "attempt 2 of 2, retrying in 0.2 s",
        ]
        other = await s.token_for("ops", "other")
        now = s.clock.now() - s.cluster.faults.start
        s.cluster.faults.add(
            FaultSpec(type="api-error", at=now, code=503, resources=("tokenreviews",))
        )
        failed = await s.http.post("/api/v2/silences", json=SILENCE, headers=bearer(other))
        assert failed.status_code == 503
        assert failed.json()["error"].startswith(
            "cannot check credentials: TokenReview failed: 503"
        )
        assert other not in failed.text
        s.cluster.faults.clear()
        # Not cached: at once a 403 (authenticated, no binding).
        again = await s.http.post("/api/v2/silences", json=SILENCE, headers=bearer(other))
        assert again.status_code == 403


async def test_the_example_binding_and_the_charts_role_grant_silences(tmp_path: Path) -> None:
    """examples/silence-editor-binding.yaml with the chart's ClusterRole, as an operator
    applies them: the bot's token creates a silence and nothing more."""
    rendered = manifests({})
    role = rendered.one("ClusterRole", "foresight-silence-editor")
    account, binding = yaml.safe_load_all(EXAMPLE.read_text(encoding="utf-8"))
    async with serve(tmp_path) as s:
        rbac = k8s.RbacAuthorizationV1Api(s.api)
        await s.call(rbac.create_cluster_role, role)
        await s.call(rbac.create_cluster_role_binding, binding)
        namespace, name = account["metadata"]["namespace"], account["metadata"]["name"]
        token = await s.token_for(namespace, name)
        created = await s.http.post("/api/v2/silences", json=SILENCE, headers=bearer(token))
        assert created.status_code == 200
        assert (await s.http.get("/api/v1/alerts", headers=bearer(token))).status_code == 200
        deleted = await s.http.delete("/api/v2/silence/x", headers=bearer(token))
        assert deleted.status_code == 404  # allowed, and there is no such silence


async def test_a_warning_at_start_when_foresight_may_not_review(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(tmp_path) as s:
        # The simulator's caller without a token is its admin: every right.
        assert await s.service.check_review_rights() == []
        # foresight's own credentials: a ServiceAccount the chart's ClusterRole is not bound to.
        token = await s.token_for("ops", "foresight")
        config = k8s.Configuration()
        config.host = s.api.configuration.host
        config.api_key = {"authorization": f"Bearer {token}"}
        limited = k8s.ApiClient(config)
        try:
            s.service.api = limited
            with caplog.at_level(logging.WARNING):
                missing = await s.service.check_review_rights()
            assert missing == [
                "create tokenreviews.authentication.k8s.io",
                "create subjectaccessreviews.authorization.k8s.io",
            ]
            assert any(
                "every API request will be answered 503" in r.message for r in caplog.records
            )
            await grant(
                s,
                "reviews",
                [
                    {
                        "apiGroups": ["authentication.k8s.io"],
                        "resources": ["tokenreviews"],
                        "verbs": ["create"],
                    },
                    {
                        "apiGroups": ["authorization.k8s.io"],
                        "resources": ["subjectaccessreviews"],
                        "verbs": ["create"],
                    },
                ],
                account("ops", "foresight"),
            )
            assert await s.service.check_review_rights() == []
        finally:
            s.service.api = s.api
            limited.close()
