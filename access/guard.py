"""The check every guarded request goes through: the bearer token, then the permission.

:class:`Guard` answers a request with the user it may act as, or with the HTTP error to send:
401 with ``WWW-Authenticate: Bearer`` for a missing or unknown token, 403 naming the missing
permission, 503 when the API server could not be asked. Answers of the authenticator and the
authorizer are cached (allowed and denied for their own TTLs); failures are not. At most
``max_reviews`` reviews run at once: a flood of made-up tokens waits its turn instead of
taking every worker thread the service's own API calls need.

:func:`build_guard` makes the guard of a mode: ``kubernetes`` (TokenReview and
SubjectAccessReview), ``token-file`` (a static file, rights by group) or ``none`` (every
request passes: logged as a warning at start, and on no account the default).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aiohttp import web

from access.cache import TtlCache
from access.model import AccessUnavailable, Authenticator, Authorizer, Permission, User
from access.tokenfile import GroupAuthorizer, TokenFile, digest
from runtime.clock import Clock

__all__ = ["ANONYMOUS", "CacheTtl", "Guard", "Mode", "bearer_token", "build_guard"]

log = logging.getLogger(__name__)

Mode = Literal["kubernetes", "token-file", "none"]
ANONYMOUS = User("system:anonymous", groups=("system:unauthenticated",))
REALM = 'Bearer realm="foresight"'


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header (scheme case-insensitive)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _error(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"status": "error", "errorType": error_type, "error": message}
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )


@dataclass(frozen=True)
class CacheTtl:
    """How long answers are kept, seconds."""

    allowed_s: float = 10.0
    denied_s: float = 10.0


class Guard:
    """Authentication and authorisation of requests, with caches; ``None`` authenticator:
    every request passes as :data:`ANONYMOUS`."""

    def __init__(
        self,
        authenticator: Authenticator | None,
        authorizer: Authorizer | None,
        clock: Clock,
        ttl: CacheTtl = CacheTtl(),
        max_reviews: int = 4,
    ) -> None:
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.ttl = ttl
        self._reviews = asyncio.Semaphore(max_reviews)
        self._users: TtlCache[bytes, User | None] = TtlCache(clock)
        self._decisions: TtlCache[tuple[User, Permission], tuple[bool, str]] = TtlCache(clock)

    @property
    def open(self) -> bool:
        """Whether every request passes (mode ``none``)."""
        return self.authenticator is None

    async def check(self, request: web.Request, permission: Permission) -> User | web.Response:
        """The user ``request`` acts as, or the error response to send instead."""
        if self.authenticator is None or self.authorizer is None:
            return ANONYMOUS
        token = bearer_token(request)
        if token is None:
            return _error(
                401,
                "unauthorized",
                "a bearer token is required (Authorization: Bearer <token>)",
                {"WWW-Authenticate": REALM},
            )
        try:
            user = await self._authenticate(token)
            if user is None:
                return _error(
                    401,
                    "unauthorized",
                    "invalid bearer token",
                    {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
                )
            allowed, reason = await self._authorize(user, permission)
        except AccessUnavailable as e:
            log.warning("cannot check credentials for %s %s: %s", request.method, request.path, e)
            return _error(503, "unavailable", f"cannot check credentials: {e}")
        if not allowed:
            message = f"forbidden: {permission.refusal(user)}"
            log.info("%s %s refused: %s (%s)", request.method, request.path, message, reason)
            return _error(403, "forbidden", message + (f": {reason}" if reason else ""))
        return user

    async def _authenticate(self, token: str) -> User | None:
        assert self.authenticator is not None
        key = digest(token)
        found, user = self._users.get(key)
        if found:
            return user
        async with self._reviews:
            user = await self.authenticator.authenticate(token)
        self._users.put(key, user, self.ttl.allowed_s if user else self.ttl.denied_s)
        return user

    async def _authorize(self, user: User, permission: Permission) -> tuple[bool, str]:
        assert self.authorizer is not None
        found, cached = self._decisions.get((user, permission))
        if found and cached is not None:
            return cached
        async with self._reviews:
            decision = await self.authorizer.authorize(user, permission)
        answer = (decision.allowed, decision.reason)
        self._decisions.put(
            (user, permission),
            answer,
            self.ttl.allowed_s if decision.allowed else self.ttl.denied_s,
        )
        return answer


def build_guard(
    mode: Mode,
    clock: Clock,
    ttl: CacheTtl,
    token_file: Path | None = None,
    kubernetes: tuple[Authenticator, Authorizer] | None = None,
) -> Guard:
    """The guard of ``mode``; ``kubernetes`` supplies the reviewers for that mode.

    Raises :class:`access.TokenFileError` for a token file that cannot be read.
    """
    if mode == "none":
        log.warning(
            "server.auth is none: anyone who reaches the API port can create and delete "
            "silences; use kubernetes or token-file outside a trusted test setup"
        )
        return Guard(None, None, clock, ttl)
    if mode == "token-file":
        if token_file is None:
            raise ValueError("server.auth token-file needs server.token_file")
        return Guard(TokenFile(token_file), GroupAuthorizer(), clock, ttl)
    if kubernetes is None:
        raise ValueError("server.auth kubernetes needs an API client")
    authenticator, authorizer = kubernetes
    return Guard(authenticator, authorizer, clock, ttl)
