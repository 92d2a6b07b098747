"""Kubernetes-native checks, as metrics-server and KEDA's metrics server delegate them: a
``TokenReview`` (authentication.k8s.io/v1) says who a bearer token belongs to, a
``SubjectAccessReview`` (authorization.k8s.io/v1) whether that user may take a permission.

Both go through the official client with the retries and error translation of
:mod:`collectors.kube` (in a worker thread: the client blocks). A failure after the retries is
:class:`AccessUnavailable`; the message names the review, never the token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from access.model import AccessUnavailable, Decision, Permission, User
from collectors.kube import KubeApiError, call
from runtime.backoff import Backoff
from runtime.clock import Clock

__all__ = ["REVIEW_RIGHTS", "SubjectAccessReviewer", "TokenReviewer", "missing_review_rights"]

# What foresight itself must be allowed, as (API group, resource), verb ``create``.
REVIEW_RIGHTS = (
    ("authentication.k8s.io", "tokenreviews"),
    ("authorization.k8s.io", "subjectaccessreviews"),
)


@dataclass(frozen=True)
class _Retry:
    clock: Clock
    backoff: Backoff
    timeout_s: float


async def _create(fn: Callable[..., Any], review: Any, retry: _Retry) -> Any:
    """``fn(review)``, a review's create call, retried; a failure is AccessUnavailable."""
    what = type(review).__name__.removeprefix("V1")
    try:
        return await call(
            fn,
            review,
            clock=retry.clock,
            retry=retry.backoff,
            what=what,
            _request_timeout=retry.timeout_s,
        )
    except KubeApiError as e:
        raise AccessUnavailable(f"{what} failed: {e}") from e


class TokenReviewer:
    """Authenticates a token with a ``TokenReview``; ``audiences`` are checked by the API
    server when given (empty: the API server's own)."""

    def __init__(
        self,
        api: k8s.ApiClient,
        clock: Clock,
        retry: Backoff,
        timeout_s: float,
        audiences: tuple[str, ...] = (),
    ) -> None:
        self._api = k8s.AuthenticationV1Api(api)
        self._retry_policy = _Retry(clock, retry, timeout_s)
        self._audiences = list(audiences) or None

    async def authenticate(self, token: str) -> User | None:
        review = k8s.V1TokenReview(
            api_version="authentication.k8s.io/v1",
            kind="TokenReview",
            spec=k8s.V1TokenReviewSpec(token=token, audiences=self._audiences),
        )
        answer = await _create(self._api.create_token_review, review, self._retry_policy)
        status = answer.status
        if status is None or not status.authenticated or status.user is None:
            return None
        info = status.user
        extra = tuple(sorted((k, tuple(v or ())) for k, v in (info.extra or {}).items()))
        return User(info.username or "", info.uid or "", tuple(info.groups or ()), extra)


class SubjectAccessReviewer:
    """Authorises with a ``SubjectAccessReview``: resource permissions are asked for
    cluster-wide (bind the role with a ClusterRoleBinding), path permissions as
    ``nonResourceAttributes``."""

    def __init__(self, api: k8s.ApiClient, clock: Clock, retry: Backoff, timeout_s: float) -> None:
        self._api = k8s.AuthorizationV1Api(api)
        self._retry_policy = _Retry(clock, retry, timeout_s)

    async def authorize(self, user: User, permission: Permission) -> Decision:
        if permission.path:
            attributes: dict[str, object] = {
                "non_resource_attributes": k8s.V1NonResourceAttributes(
                    path=permission.path, verb=permission.verb
                )
            }
        else:
            attributes = {
                "resource_attributes": k8s.V1ResourceAttributes(
                    group=permission.group, resource=permission.resource, verb=permission.verb
                )
            }
        review = k8s.V1SubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SubjectAccessReview",
            spec=k8s.V1SubjectAccessReviewSpec(
                user=user.name,
                uid=user.uid or None,
                groups=list(user.groups) or None,
                extra={k: list(v) for k, v in user.extra} or None,
                **attributes,
            ),
        )
        answer = await _create(self._api.create_subject_access_review, review, self._retry_policy)
        status = answer.status
        if status is None:
            return Decision(False, "no status in the SubjectAccessReview")
        return Decision(bool(status.allowed), status.reason or status.evaluation_error or "")


async def missing_review_rights(
    api: k8s.ApiClient, clock: Clock, retry: Backoff, timeout_s: float
) -> list[str]:
    """Which of :data:`REVIEW_RIGHTS` foresight's own credentials lack, as ``create
    tokenreviews.authentication.k8s.io``, asked with SelfSubjectAccessReviews; without them
    every API request would be answered 503. Raises :class:`AccessUnavailable`."""
    authz = k8s.AuthorizationV1Api(api)
    missing = []
    for group, resource in REVIEW_RIGHTS:
        review = k8s.V1SelfSubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SelfSubjectAccessReview",
            spec=k8s.V1SelfSubjectAccessReviewSpec(
                resource_attributes=k8s.V1ResourceAttributes(
                    group=group, resource=resource, verb="create"
                )
            ),
        )
        answer = await _create(
            authz.create_self_subject_access_review, review, _Retry(clock, retry, timeout_s)
        )
        if answer.status is None or not answer.status.allowed:
            missing.append(f"create {resource}.{group}")
    return missing
