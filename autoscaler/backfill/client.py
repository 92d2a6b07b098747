"""The HTTP client that reads the history server, with the TLS trust of its settings.

Credentials are not the client's: :meth:`runtime.endpoint.EndpointAuth.request_headers` reads
them from their files for every request (a rotated token or password is picked up without a
restart) and :class:`~collectors.prometheus_source.PrometheusSource` sends them. Redirects are
not followed (a redirect must not carry them elsewhere), and the base URL may hold none (the
settings refuse it), so nothing that is logged (URLs, errors) contains one.
"""

from __future__ import annotations

import ssl

import httpx

from autoscaler.backfill.settings import HistorySettings

__all__ = ["HistoryClientError", "history_client"]


class HistoryClientError(Exception):
    """The client cannot be built (a CA file missing or not PEM); names the setting."""


def history_client(settings: HistorySettings) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for ``settings.prometheus_url``."""
    try:
        verify = settings.verify()
    except (ssl.SSLError, OSError) as e:
        raise HistoryClientError(f"history.ca_file: {settings.ca_file}: {e}") from e
    return httpx.AsyncClient(
        verify=verify, timeout=settings.timeout_seconds, follow_redirects=False
    )
