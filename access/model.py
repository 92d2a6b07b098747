"""The values access decisions are made of, and the two interfaces that make them.

A :class:`Permission` is either a verb on a resource of the ``foresight.dev`` API group
(``create silences.foresight.dev``) or a verb on a path (``get /metrics``), exactly the two
shapes of a Kubernetes ``SubjectAccessReview``, so RBAC rules grant them as they grant
anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "GROUP",
    "AccessUnavailable",
    "Authenticator",
    "Authorizer",
    "Decision",
    "Permission",
    "User",
]

GROUP = "foresight.dev"


class AccessUnavailable(Exception):
    """Credentials could not be checked (the API server failed or could not be reached);
    answered 503, never cached."""


@dataclass(frozen=True)
class User:
    """Who a token belongs to, as the Kubernetes ``UserInfo``."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    # The review's ``extra`` as sorted (key, values) pairs: hashable, for the caches' keys.
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Permission:
    """``verb`` on ``resource`` of ``group``, or on the non-resource ``path`` when set."""

    verb: str
    resource: str = ""
    path: str = ""
    group: str = GROUP

    def __post_init__(self) -> None:
        if bool(self.resource) == bool(self.path):
            raise ValueError("a Permission names a resource or a path (exactly one)")

    def __str__(self) -> str:
        if self.path:
            return f"{self.verb} {self.path}"
        return (
            f"{self.verb} {self.resource}.{self.group}"
            if self.group
            else f"{self.verb} {self.resource}"
        )

    def refusal(self, user: User) -> str:
        """Why ``user`` is refused, worded as the Kubernetes API server words it."""
        if self.path:
            return f'User "{user.name}" cannot {self.verb} path "{self.path}"'
        return (
            f'User "{user.name}" cannot {self.verb} resource "{self.resource}" '
            f'in API group "{self.group}"'
        )


@dataclass(frozen=True)
class Decision:
    """An authorizer's answer, with its reason when it gave one."""

    allowed: bool
    reason: str = ""


class Authenticator(Protocol):
    """Turns a bearer token into a user; ``None`` for a token it does not accept."""

    async def authenticate(self, token: str) -> User | None:
        """The token's user, or None; raises :class:`AccessUnavailable` when it cannot say."""
        ...


class Authorizer(Protocol):
    """Decides whether a user may take a permission."""

    async def authorize(self, user: User, permission: Permission) -> Decision:
        """Allowed or not; raises :class:`AccessUnavailable` when it cannot say."""
        ...
