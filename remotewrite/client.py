"""Sending one remote-write request, and what its failure means.

Errors (the one exception tree of this boundary; httpx's are translated here only):

* :class:`RemoteWriteError` — base;
* :class:`Retryable` — worth sending again: no connection, a timeout, 5xx, or 429 (unless
  ``retry_on_http_429`` is off); carries the server's ``Retry-After`` in seconds, if any;
* :class:`Rejected` — the receiver refused the batch for good (4xx other than 429): sending it
  again would fail the same way, so the batch is dropped and counted as failed.

Messages name the receiver (its queue name and URL without credentials) and carry at most
:data:`_BODY_SHOWN` characters of the response body. Credentials (``headers``, basic auth,
bearer tokens) are put on the request only, never into a message or a log line.
"""

from __future__ import annotations

import base64
import functools
import ssl
from contextlib import AbstractContextManager, nullcontext
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import httpx

from remotewrite.prompb import CONTENT_ENCODING, CONTENT_TYPE, PROTOCOL_VERSION
from remotewrite.settings import RemoteWriteSettings
from runtime.backoff import retry_after_seconds
from runtime.clock import Clock, VirtualClock

__all__ = ["Rejected", "RemoteClient", "RemoteWriteError", "Retryable", "safe_url", "user_agent"]

_BODY_SHOWN = 256


@functools.cache
def user_agent() -> str:
    """``foresight/<version>``, as Prometheus sends ``Prometheus/<version>`` (read once:
    the package metadata is parsed on each look-up)."""
    try:
        return f"foresight/{version('foresight')}"
    except PackageNotFoundError:  # not installed as a distribution: still an agent
        return "foresight/unknown"


class RemoteWriteError(Exception):
    """A request to a remote-write receiver failed."""


class Retryable(RemoteWriteError):
    """Worth sending again, after ``retry_after`` seconds if the server said so."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(RemoteWriteError):
    """Refused for good (4xx other than 429): drop the batch."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _tls(settings: RemoteWriteSettings) -> ssl.SSLContext | bool:
    tls = settings.tls
    if not settings.url.startswith("https://"):
        return True
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def _read_secret(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


class RemoteClient:
    """POSTs request bodies to one receiver (async, on the caller's event loop)."""

    def __init__(
        self,
        settings: RemoteWriteSettings,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._client = httpx.AsyncClient(
            timeout=settings.remote_timeout_seconds, verify=_tls(settings), transport=transport
        )
        # SNI and the certificate check against another name than the URL's host.
        server_name = settings.tls.server_name
        self._extensions = {"sni_hostname": server_name} if server_name else {}
        self.where = f"remote write {settings.queue_name} ({safe_url(settings.url)})"

    def _headers(self) -> dict[str, str]:
        s = self.settings
        headers = {k: v.get_secret_value() for k, v in s.headers.items()}
        headers.update(
            {
                "Content-Encoding": CONTENT_ENCODING,
                "Content-Type": CONTENT_TYPE,
                "X-Prometheus-Remote-Write-Version": PROTOCOL_VERSION,
                "User-Agent": user_agent(),
            }
        )
        token = None
        if s.bearer_token is not None:
            token = s.bearer_token.get_secret_value()
        elif s.bearer_token_file is not None:
            token = _read_secret(s.bearer_token_file)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if s.basic_auth is not None:
            auth = s.basic_auth
            password = ""
            if auth.password is not None:
                password = auth.password.get_secret_value()
            elif auth.password_file is not None:
                password = _read_secret(auth.password_file)
            pair = base64.b64encode(f"{auth.username}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        return headers

    async def send(self, body: bytes) -> None:
        """Send one request body; raises :class:`Retryable` or :class:`Rejected`."""
        try:
            headers = self._headers()
        except OSError as e:
            raise Retryable(f"{self.where}: cannot read a credential file: {e}") from e
        # Virtual time must not jump past the request's timeout while it is on the wire.
        hold: AbstractContextManager[None] = (
            self._clock.hold() if isinstance(self._clock, VirtualClock) else nullcontext()
        )
        try:
            with hold:
                response = await self._client.post(
                    self.settings.url, content=body, headers=headers, extensions=self._extensions
                )
        except httpx.TimeoutException as e:
            raise Retryable(f"{self.where}: timed out: {type(e).__name__}") from e
        except httpx.HTTPError as e:
            raise Retryable(f"{self.where}: {type(e).__name__}: {e}") from e
        status = response.status_code
        if 200 <= status < 300:
            return
        text = response.text[:_BODY_SHOWN].strip()
        message = f"{self.where}: HTTP {status}: {text}"
        if status >= 500 or (status == 429 and self.settings.queue_config.retry_on_http_429):
            wait = retry_after_seconds(response.headers.get("Retry-After"), self._clock.now())
            raise Retryable(message, wait)
        raise Rejected(message, status)

    async def aclose(self) -> None:
        await self._client.aclose()


def safe_url(url: str) -> str:
    """The URL without user info (credentials), for messages."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url
