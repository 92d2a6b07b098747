"""Authentication and authorisation as the API server offers them to others: ``TokenRequest``,
``TokenReview``, ``SubjectAccessReview``, and the RBAC objects they are decided by.

What the simulator serves:

- ``rbac.authorization.k8s.io/v1`` Roles, ClusterRoles, RoleBindings and ClusterRoleBindings,
  stored like any other object;
- ``POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`` (what ``kubectl create
  token`` calls): a random opaque token for an existing ServiceAccount, valid for
  ``spec.expirationSeconds`` (default 3600) on the simulator's clock and while the
  ServiceAccount exists;
- ``POST /apis/authentication.k8s.io/v1/tokenreviews``: such a token is
  ``system:serviceaccount:<ns>:<name>`` in the groups ``system:serviceaccounts``,
  ``system:serviceaccounts:<ns>`` and ``system:authenticated``; the simulator's own bearer
  token (``--token``) is ``kubernetes-admin`` in ``system:masters``; any other token is not
  authenticated;
- ``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews``: the same for the caller
  (its bearer token as a TokenReview reads it; without a token on a simulator that requires
  none, the caller is ``kubernetes-admin``);
- ``POST /apis/authorization.k8s.io/v1/subjectaccessreviews``: decided as the RBAC authorizer
  decides. ``system:masters`` may do everything; otherwise a ClusterRoleBinding (any
  namespace) or a RoleBinding (the request's namespace) whose subject is the user, one of its
  groups or its ServiceAccount grants the rules of its Role or ClusterRole. A rule matches by
  verb, API group, resource (``resource/subresource``), resource name, or non-resource URL
  (``*`` and a trailing ``*`` as prefix). Aggregated ClusterRoles are not expanded. A request
  nothing grants is not allowed, with no opinion (``denied`` false), as RBAC answers.

The simulator itself does not authorise its own API by these rules: they are for reviews.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from simulator.api_core import ApiCore
from simulator.errors import ApiError
from simulator.objects import KubeObject, rfc3339
from simulator.resources import ResourceType, TypeRegistry

__all__ = ["ADMIN_USER", "RBAC_TYPES", "Reviews", "install_rbac_types"]

RBAC = "rbac.authorization.k8s.io"
RBAC_TYPES = tuple(
    ResourceType(RBAC, "v1", kind, plural, kind.lower(), namespaced)
    for kind, plural, namespaced in (
        ("Role", "roles", True),
        ("ClusterRole", "clusterroles", False),
        ("RoleBinding", "rolebindings", True),
        ("ClusterRoleBinding", "clusterrolebindings", False),
    )
)
ADMIN_USER = {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
TOKEN_REVIEW_PATH = ["apis", "authentication.k8s.io", "v1", "tokenreviews"]
ACCESS_REVIEW_PATH = ["apis", "authorization.k8s.io", "v1", "subjectaccessreviews"]
SELF_REVIEW_PATH = ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"]
DEFAULT_EXPIRATION = 3600


def install_rbac_types(registry: TypeRegistry) -> None:
    """Serve the RBAC kinds (once)."""
    for t in RBAC_TYPES:
        if registry.get(t.group, t.version, t.plural) is None:
            registry.add(t)


@dataclass(frozen=True)
class _Issued:
    namespace: str
    name: str
    uid: str
    expires: float


def _review_body(body: Any, kind: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
        raise ApiError.bad_request(f"a {kind} needs a spec")
    return body


def _matches(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and ("*" in values or wanted in values)


def _url_matches(patterns: Any, path: str) -> bool:
    if not isinstance(patterns, list):
        return False
    return any(
        p in ("*", path) or (isinstance(p, str) and p.endswith("*") and path.startswith(p[:-1]))
        for p in patterns
    )


def rule_allows(rule: Any, attributes: dict[str, Any], non_resource: bool) -> bool:
    """Whether one PolicyRule grants the request of a SubjectAccessReview's attributes."""
    if not isinstance(rule, dict) or not _matches(rule.get("verbs"), attributes.get("verb", "")):
        return False
    if non_resource:
        return _url_matches(rule.get("nonResourceURLs"), str(attributes.get("path", "")))
    resource = str(attributes.get("resource", ""))
    if attributes.get("subresource"):
        resource += "/" + str(attributes["subresource"])
    names = rule.get("resourceNames") or []
    return (
        _matches(rule.get("apiGroups"), str(attributes.get("group", "")))
        and _matches(rule.get("resources"), resource)
        and (not names or attributes.get("name") in names)
    )


class Reviews:
    """Tokens issued to ServiceAccounts, and the answers to reviews."""

    def __init__(self, core: ApiCore, admin_token: str | None) -> None:
        self.core = core
        self.admin_token = admin_token
        self._issued: dict[str, _Issued] = {}
        install_rbac_types(core.registry)

    def _type(self, plural: str) -> ResourceType:
        group = "" if plural == "serviceaccounts" else RBAC
        rt = self.core.registry.get(group, "v1", plural)
        assert rt is not None
        return rt

    # -- TokenRequest and TokenReview -------------------------------------------------------

    def request_token(self, namespace: str, name: str, body: Any) -> KubeObject:
        """A ``TokenRequest`` answered: a new token for the ServiceAccount."""
        account = self.core.get(self._type("serviceaccounts"), namespace, name).obj
        spec = body.get("spec") if isinstance(body, dict) else None
        seconds = (spec or {}).get("expirationSeconds") or DEFAULT_EXPIRATION
        if not isinstance(seconds, int) or seconds < 600:
            raise ApiError(
                422,
                "Invalid",
                "spec.expirationSeconds: may not specify a duration less than 10 minutes",
            )
        token = "sim-" + secrets.token_urlsafe(32)
        expires = self.core.clock.now() + seconds
        uid = str(account["metadata"].get("uid", ""))
        self._issued[token] = _Issued(namespace, name, uid, expires)
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"audiences": [], "expirationSeconds": seconds},
            "status": {"token": token, "expirationTimestamp": rfc3339(expires)},
        }

    def token_review(self, body: Any) -> KubeObject:
        """A ``TokenReview`` answered."""
        review = _review_body(body, "TokenReview")
        token = review["spec"].get("token")
        user = self._user_of(token) if isinstance(token, str) and token else None
        status: dict[str, Any] = {"authenticated": user is not None, "user": user or {}}
        if user is None:
            status["error"] = "invalid bearer token"
        return {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {},
            "spec": review["spec"],
            "status": status,
        }

    def _user_of(self, token: str) -> dict[str, Any] | None:
        if self.admin_token is not None and secrets.compare_digest(token, self.admin_token):
            return dict(ADMIN_USER)
        issued = self._issued.get(token)
        if issued is None or self.core.clock.now() >= issued.expires:
            return None
        try:
            account = self.core.get(self._type("serviceaccounts"), issued.namespace, issued.name)
        except ApiError:
            return None  # a bound token dies with its ServiceAccount
        if str(account.obj["metadata"].get("uid", "")) != issued.uid:
            return None
        ns = issued.namespace
        return {
            "username": f"system:serviceaccount:{ns}:{issued.name}",
            "uid": issued.uid,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{ns}",
                "system:authenticated",
            ],
        }

    # -- SubjectAccessReview ----------------------------------------------------------------

    def self_access_review(self, body: Any, token: str | None) -> KubeObject:
        """A ``SelfSubjectAccessReview``: the caller's own rights."""
        review = _review_body(body, "SelfSubjectAccessReview")
        caller = self._user_of(token) if token else None
        if caller is None:
            caller = dict(ADMIN_USER)  # only reached when the simulator requires no token
        spec = {**review["spec"], "user": caller["username"], "groups": caller["groups"]}
        answer = self.access_review({"spec": spec})
        answer["kind"] = "SelfSubjectAccessReview"
        answer["spec"] = review["spec"]
        return answer

    def access_review(self, body: Any) -> KubeObject:
        """A ``SubjectAccessReview`` answered by the stored RBAC objects."""
        review = _review_body(body, "SubjectAccessReview")
        spec = review["spec"]
        resource = spec.get("resourceAttributes")
        non_resource = spec.get("nonResourceAttributes")
        if (resource is None) == (non_resource is None):
            raise ApiError(
                422,
                "Invalid",
                "spec: Invalid value: exactly one of nonResourceAttributes or "
                "resourceAttributes must be specified",
            )
        user = str(spec.get("user") or "")
        groups = [str(g) for g in spec.get("groups") or []]
        attributes = dict(non_resource if non_resource is not None else resource)
        reason = self._allowed_by(user, groups, attributes, non_resource is not None)
        status: dict[str, Any] = {"allowed": reason is not None}
        if reason is not None:
            status["reason"] = reason
        return {
            "kind": "SubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": spec,
            "status": status,
        }

    def _allowed_by(
        self, user: str, groups: list[str], attributes: dict[str, Any], non_resource: bool
    ) -> str | None:
        if "system:masters" in groups:
            return 'RBAC: allowed by group "system:masters"'
        namespace = "" if non_resource else str(attributes.get("namespace") or "")
        for binding, role in self._bindings(namespace):
            if not any(
                _subject_is(s, user, groups, binding) for s in binding.get("subjects") or []
            ):
                continue
            if any(rule_allows(r, attributes, non_resource) for r in role.get("rules") or []):
                m = binding["metadata"]
                where = f'{binding["kind"]} "{m["name"]}"' + (
                    f' of namespace "{m["namespace"]}"' if m.get("namespace") else ""
                )
                return f'RBAC: allowed by {where} of {role["kind"]} "{role["metadata"]["name"]}"'
        return None

    def _bindings(self, namespace: str) -> Iterator[tuple[KubeObject, KubeObject]]:
        """(binding, its role) for every ClusterRoleBinding, then the namespace's
        RoleBindings; a binding whose role does not exist grants nothing."""
        core = self.core
        found = [
            (s.obj, "") for s in core.list_objects(self._type("clusterrolebindings"), None).items
        ]
        if namespace:
            found += [
                (s.obj, namespace)
                for s in core.list_objects(self._type("rolebindings"), namespace).items
            ]
        for binding, ns in found:
            ref = binding.get("roleRef") or {}
            plural = "roles" if ref.get("kind") == "Role" and ns else "clusterroles"
            try:
                role = core.get(
                    self._type(plural), ns if plural == "roles" else "", str(ref.get("name"))
                )
            except ApiError:
                continue
            yield binding, role.obj


def _subject_is(subject: Any, user: str, groups: list[str], binding: KubeObject) -> bool:
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user)
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding["metadata"].get("namespace", "")
        return user == f"system:serviceaccount:{ns}:{name}"
    return False
