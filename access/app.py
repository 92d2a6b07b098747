"""The API server's application: routes, each behind the guard with its own permission.

To add endpoints (the Prometheus query API, say), hand more :class:`ApiRoute` values to
:func:`api_app` — in ``foresight run`` through ``Service.add_api_routes`` (or
``Service(api_routes=...)``) — built with :func:`guarded` (the verb follows the method),
:func:`with_verbs` (a table of verbs by method and path: a ``POST /api/v1/query`` reads, so
its verb is ``get``), or directly with the :class:`Permission` a route needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from access.guard import Guard
from access.model import Permission, User

__all__ = ["METHOD_VERBS", "USER", "ApiRoute", "api_app", "guarded", "protect", "with_verbs"]

# The user a guarded request acts as, for handlers that want to know (``request[USER]``).
USER = web.RequestKey("user", User)

# The verb a method asks for; GET is ``list`` on a collection, ``get`` on a path with an id.
METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class ApiRoute:
    """An aiohttp route and the permission a caller needs for it."""

    route: web.RouteDef
    permission: Permission


def _verb(route: web.RouteDef) -> str:
    if route.method in ("GET", "HEAD"):
        return "get" if "{" in route.path else "list"
    try:
        return METHOD_VERBS[route.method]
    except KeyError:
        raise ValueError(f"{route.method} {route.path}: no verb for this method") from None


def guarded(routes: Iterable[web.RouteDef], resource: str) -> list[ApiRoute]:
    """``routes`` on ``<resource>.foresight.dev``, the verb following each method: GET is
    ``list`` (``get`` when the path has an ``{id}``), POST ``create``, PUT ``update``, PATCH
    ``patch``, DELETE ``delete``."""
    return [ApiRoute(r, Permission(_verb(r), resource)) for r in routes]


def with_verbs(
    routes: Iterable[web.RouteDef], verbs: Mapping[tuple[str, str], str], resource: str
) -> list[ApiRoute]:
    """``routes`` on ``<resource>.foresight.dev``, each with its verb from ``verbs`` (by
    method and path); a route missing from the table is a programming error (KeyError)."""
    return [ApiRoute(r, Permission(verbs[(r.method, r.path)], resource)) for r in routes]


def protect(guard: Guard, handler: Handler, permission: Permission) -> Handler:
    """``handler`` answered only for callers the guard lets take ``permission``."""

    async def checked(request: web.Request) -> web.StreamResponse:
        outcome = await guard.check(request, permission)
        if isinstance(outcome, web.StreamResponse):
            return outcome
        request[USER] = outcome
        return await handler(request)

    return checked


def api_app(guard: Guard, routes: Iterable[ApiRoute]) -> web.Application:
    """An application serving ``routes``, every one behind ``guard``."""
    app = web.Application()
    seen: set[tuple[str, str]] = set()
    for api_route in routes:
        r = api_route.route
        if (r.method, r.path) in seen:
            raise ValueError(f"{r.method} {r.path} is routed twice")
        seen.add((r.method, r.path))
        handler = protect(guard, r.handler, api_route.permission)
        app.router.add_routes([web.RouteDef(r.method, r.path, handler, r.kwargs)])
    return app
