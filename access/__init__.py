"""Who may call foresight's HTTP API, and with what right.

A request carries ``Authorization: Bearer <token>``. An :class:`Authenticator` turns the token
into a :class:`User` (Kubernetes ``TokenReview``, or a static token file); an
:class:`Authorizer` decides whether that user may take a :class:`Permission` (Kubernetes
``SubjectAccessReview`` against ``<resource>.foresight.dev``, or the groups of the token
file). :class:`Guard` puts both behind short caches and answers 401 (no or unknown token),
403 (naming the missing permission) or 503 (the API server could not be asked).

:func:`api_app` builds the API server from :class:`ApiRoute` values: aiohttp routes, each with
the permission it needs. Another package adds its endpoints by handing more ``ApiRoute``
values to the same function; every one of them sits behind the same guard.

Tokens are never logged, printed or kept in memory beyond the request: caches are keyed by
the token's SHA-256 digest.
"""

from access.app import ApiRoute, api_app, guarded, protect, with_verbs
from access.guard import CacheTtl, Guard, Mode, build_guard
from access.model import (
    AccessUnavailable,
    Authenticator,
    Authorizer,
    Decision,
    Permission,
    User,
)
from access.tls import ServingTls, TlsFilesError
from access.tokenfile import TokenFileError

__all__ = [
    "AccessUnavailable",
    "ApiRoute",
    "Authenticator",
    "Authorizer",
    "CacheTtl",
    "Decision",
    "Guard",
    "Mode",
    "Permission",
    "ServingTls",
    "TlsFilesError",
    "TokenFileError",
    "User",
    "api_app",
    "build_guard",
    "guarded",
    "protect",
    "with_verbs",
]
