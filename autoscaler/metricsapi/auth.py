"""Who calls the external metrics API: the API server's front proxy, or a bearer token.

An aggregated API server is called by kube-apiserver, which has already authenticated the
user and forwards it in headers (``X-Remote-User``, ``X-Remote-Group``,
``X-Remote-Extra-<key>``) over a TLS connection with its front-proxy client certificate.
Those headers are believed only on a connection whose client certificate the
``requestheader`` CA signed (the TLS handshake verifies it) and whose common name is allowed;
on any other connection they are ignored. Without such a certificate, a bearer token is
checked with a ``TokenReview``. Every metric read is then authorised with a
``SubjectAccessReview`` (``list`` on ``<metric>.external.metrics.k8s.io``), as kube-apiserver
itself would: :class:`AggregatedGuard` is :class:`access.Guard`, with its caches and its limit
on concurrent reviews, given one more way to learn the user.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from access import AccessUnavailable, Guard, Permission, ServingTls, TlsFilesError, User
from access.guard import bearer_token

__all__ = ["AggregatedGuard", "Refused", "RequestHeader", "serving_tls"]


class Refused(Exception):
    """A request that is not served: ``code`` 401, 403 or 503 and the message to answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RequestHeader:
    """How the front proxy names the user (kube-apiserver's ``--requestheader-*`` flags)."""

    allowed_names: frozenset[str] = frozenset()
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)

    def user(self, common_name: str, headers: Mapping[str, Any]) -> User | None:
        """The user the headers name, sent by a certificate with ``common_name``; None when
        they name none. Raises :class:`Refused` for a common name that is not allowed."""
        if self.allowed_names and common_name not in self.allowed_names:
            raise Refused(
                401,
                f"client certificate CN {common_name!r} is not one of the allowed front-proxy "
                "names",
            )
        name = next((v for h in self.username_headers if (v := headers.get(h, "").strip())), "")
        if not name:
            return None
        getall = getattr(headers, "getall", None)
        groups: list[str] = []
        for header in self.group_headers:
            values = getall(header, []) if getall is not None else [headers.get(header, "")]
            groups.extend(g.strip() for v in values for g in v.split(",") if g.strip())
        extra: dict[str, list[str]] = {}
        # A repeated header is one key with several values: each name is read once.
        for key in {k.lower(): k for k in headers}.values():
            for prefix in self.extra_prefixes:
                if key.lower().startswith(prefix.lower()):
                    values = getall(key, []) if getall is not None else [headers[key]]
                    extra.setdefault(unquote(key[len(prefix) :]).lower(), []).extend(values)
        return User(
            name,
            groups=tuple(groups),
            extra=tuple(sorted((k, tuple(v)) for k, v in extra.items())),
        )


def _common_name(request: web.Request) -> str | None:
    """The CN of the verified client certificate of the connection, if it has one."""
    transport = request.transport
    peer = transport.get_extra_info("peercert") if transport is not None else None
    if not peer:
        return None
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def serving_tls(cert: Path, key: Path, client_ca: Path | None) -> ServingTls:
    """The serving certificate, reloaded when renewed; with ``client_ca``, client
    certificates are asked for and must verify against it (none is fine: a bearer token)."""
    tls = ServingTls(cert, key)
    if client_ca is not None:
        try:
            tls.context.load_verify_locations(cafile=str(client_ca))
        except (OSError, ssl.SSLError) as e:
            raise TlsFilesError(f"{client_ca}: cannot load the front-proxy CA: {e}") from e
        tls.context.verify_mode = ssl.CERT_OPTIONAL
    return tls


class AggregatedGuard(Guard):
    """:class:`access.Guard` that also believes the front proxy (see the module)."""

    def __init__(self, *args: Any, request_header: RequestHeader | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_header = request_header

    async def identify(self, request: web.Request) -> User:
        """The caller; raises :class:`Refused` (401, or 503 when a review failed)."""
        if self.request_header is not None:
            common_name = _common_name(request)
            if common_name is not None:
                user = self.request_header.user(common_name, request.headers)
                if user is not None:
                    return user
        token = bearer_token(request)
        if token is None:
            raise Refused(401, "Unauthorized")
        try:
            user = await self._authenticate(token)
        except AccessUnavailable as e:
            raise Refused(503, f"cannot check credentials: {e}") from e
        if user is None:
            raise Refused(401, "Unauthorized")
        return user

    async def permit(self, user: User, permission: Permission) -> None:
        """Nothing if ``user`` may take ``permission``; raises :class:`Refused` (403, 503)."""
        try:
            allowed, reason = await self._authorize(user, permission)
        except AccessUnavailable as e:
            raise Refused(503, f"cannot check credentials: {e}") from e
        if not allowed:
            message = permission.refusal(user)
            raise Refused(403, message + (f": {reason}" if reason else ""))


def request_header_of(
    allowed_names: Sequence[str],
    username_headers: Sequence[str],
    group_headers: Sequence[str],
    extra_prefixes: Sequence[str],
) -> RequestHeader:
    """A :class:`RequestHeader` from the settings' lists."""
    return RequestHeader(
        frozenset(allowed_names),
        tuple(username_headers),
        tuple(group_headers),
        tuple(extra_prefixes),
    )
