"""The HTTP client that reads the history server, with its TLS and credentials.

Credentials are read from their files on every request (a rotated token or password is
picked up without a restart) and put only in the ``Authorization`` header; nothing here logs
them, redirects are not followed (a redirect must not carry them elsewhere), and the base URL
may not hold any (the settings refuse it).
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Generator
from pathlib import Path

import httpx

from autoscaler.backfill.settings import HistorySettings
from collectors.kubelet import read_token

__all__ = ["FileAuth", "HistoryClientError", "history_client"]


class HistoryClientError(Exception):
    """The client cannot be built (a CA file missing or not PEM); names the setting."""


class FileAuth(httpx.Auth):
    """``Authorization: Bearer <token file>`` or ``Basic <user>:<password file>``, read per
    request; no header while the file is missing or empty."""

    def __init__(self, secret_file: Path, username: str | None = None) -> None:
        self._file = secret_file
        self._username = username

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        secret = read_token(self._file)
        if secret is not None:
            if self._username is None:
                request.headers["Authorization"] = f"Bearer {secret}"
            else:
                pair = f"{self._username}:{secret}".encode()
                request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        yield request


def _verify(settings: HistorySettings) -> ssl.SSLContext | bool:
    if settings.insecure_skip_tls_verify:
        return False
    if settings.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(settings.ca_file))
    except (ssl.SSLError, OSError) as e:
        raise HistoryClientError(f"history.ca_file: {settings.ca_file}: {e}") from e


def history_client(settings: HistorySettings) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for ``settings.prometheus_url``."""
    auth: httpx.Auth | None = None
    if settings.token_file is not None:
        auth = FileAuth(settings.token_file)
    elif settings.basic_auth_password_file is not None:
        auth = FileAuth(settings.basic_auth_password_file, settings.basic_auth_username)
    return httpx.AsyncClient(
        auth=auth,
        verify=_verify(settings),
        headers=settings.headers,
        timeout=settings.timeout_seconds,
        follow_redirects=False,
    )
