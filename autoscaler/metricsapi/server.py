"""The external metrics API server: routes, authentication and authorisation, errors.

Paths (GET only; anything else is a 405 ``Status``):

- ``/healthz``, ``/livez``, ``/readyz``: ``ok``, unauthenticated (probes);
- ``/apis``, ``/apis/external.metrics.k8s.io``, ``/apis/external.metrics.k8s.io/v1beta1``:
  discovery, for any authenticated caller (what ``system:discovery`` grants everywhere);
- ``/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}?labelSelector=``:
  an ``ExternalMetricValueList``, for callers allowed ``list`` on
  ``{metric}.external.metrics.k8s.io`` (a cluster-wide SubjectAccessReview: bind the
  ClusterRole with a ClusterRoleBinding, as the HPA controller's is).

Errors are ``Status`` objects: 401 (no or unknown credentials), 403 (naming the missing
right), 404 (unknown path or metric), 400 (a selector that does not parse), 503 (the API
server could not be asked). Values are read from the forecasts the controller keeps; nothing
is fitted or queried on a request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from access import Permission, ServingTls
from autoscaler.metricsapi.auth import AggregatedGuard, Refused
from autoscaler.metricsapi.documents import (
    GROUP,
    METRICS,
    VERSION,
    ForecastView,
    api_group,
    api_resource_list,
    metric_value_list,
    status,
)
from autoscaler.metricsapi.selector import SelectorError, parse_selector
from runtime.clock import Clock

__all__ = ["ExternalMetricsApi"]

log = logging.getLogger(__name__)

_PROBES = frozenset({"/healthz", "/livez", "/readyz"})


def _json(doc: Any, code: int = 200) -> web.Response:
    return web.Response(text=json.dumps(doc), status=code, content_type="application/json")


class ExternalMetricsApi:
    """``external.metrics.k8s.io/v1beta1`` over ``views`` (the forecasts now) and
    ``updated_at`` (when they were computed; None: the clock's now)."""

    def __init__(
        self,
        guard: AggregatedGuard,
        clock: Clock,
        views: Callable[[], Iterable[ForecastView]],
        updated_at: Callable[[], float | None] = lambda: None,
        tls: ServingTls | None = None,
    ) -> None:
        """``tls``: the serving certificate (with the front-proxy CA), kept for reloads."""
        self.guard = guard
        self.tls = tls
        self.clock = clock
        self.views = views
        self.updated_at = updated_at

    def app(self) -> web.Application:
        """The aiohttp application: every path through :meth:`handle`."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request; every failure as a ``Status``."""
        path = request.path.rstrip("/") or "/"
        if path in _PROBES:
            return web.Response(text="ok")
        if request.method not in ("GET", "HEAD"):
            return _json(
                status(405, "the server does not allow this method on the requested resource"),
                405,
            )
        try:
            user = await self.guard.identify(request)
            segments = [s for s in path.split("/") if s]
            if segments == ["apis"]:
                group = api_group()
                return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]})
            if segments == ["apis", GROUP]:
                return _json(api_group())
            if segments == ["apis", GROUP, VERSION]:
                return _json(api_resource_list())
            if len(segments) == 6 and segments[:4] == ["apis", GROUP, VERSION, "namespaces"]:
                namespace, metric = segments[4], segments[5]
                await self.guard.permit(user, Permission("list", metric, group=GROUP))
                return self._values(request, namespace, metric)
        except Refused as e:
            if e.code != 401:
                log.info("%s %s refused: %s", request.method, request.path, e.message)
            headers = {"WWW-Authenticate": 'Bearer realm="foresight"'} if e.code == 401 else None
            return web.Response(
                text=json.dumps(status(e.code, e.message)),
                status=e.code,
                content_type="application/json",
                headers=headers,
            )
        return _json(status(404, "the server could not find the requested resource"), 404)

    def _values(self, request: web.Request, namespace: str, metric: str) -> web.Response:
        if metric not in METRICS:
            return _json(
                status(
                    404,
                    f'external metric "{metric}" not found: foresight serves {", ".join(METRICS)}',
                    {"name": metric, "group": GROUP, "kind": metric},
                ),
                404,
            )
        try:
            selector = parse_selector(request.query.get("labelSelector"))
        except SelectorError as e:
            return _json(status(400, f"labelSelector: {e}"), 400)
        at = self.updated_at()
        doc = metric_value_list(
            metric, namespace, selector, self.views(), self.clock.now() if at is None else at
        )
        return _json(doc)
