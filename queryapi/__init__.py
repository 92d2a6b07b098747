"""Prometheus' HTTP API v1 on foresight's live store, so Grafana and promtool query it directly.

``QueryApi(engine, store, QueryApiSettings(), clock).routes()`` are the aiohttp routes to
mount (every one only reads; :attr:`QueryApi.verbs`); ``close()`` stops its query threads.
Parameters, JSON and errors are Prometheus' (:mod:`queryapi.params`, :mod:`queryapi.encode`,
:mod:`queryapi.errors`); queries run off the event loop under a timeout, a sample limit and a
bound on concurrent queries (:mod:`queryapi.runner`).
"""

from queryapi.api import QueryApi
from queryapi.errors import ApiError
from queryapi.metadata import registry_metadata
from queryapi.settings import QueryApiSettings

__all__ = ["ApiError", "QueryApi", "QueryApiSettings", "registry_metadata"]
