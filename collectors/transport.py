"""An httpx transport that sends requests with aiohttp, for scraping thousands of endpoints.

httpx's own pool costs about 2 ms of CPU per request at a few dozen connections (its pool
bookkeeping is quadratic in the connections it holds), which alone is ~10 s per cycle at
5,000 kubelets; aiohttp's connector costs ~0.2 ms. The scraper keeps speaking httpx — its
errors, responses and streaming — and only the wire underneath changes.

Every aiohttp error becomes an httpx error in one place (:func:`map_aiohttp_error`), chained
with ``from``, so :func:`collectors.scrape.classify` sees only httpx errors and can still tell
a TLS failure from a refused connection by the cause.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx

__all__ = ["AiohttpTransport", "map_aiohttp_error"]

_CHUNK = 64 * 1024


def map_aiohttp_error(error: BaseException, request: httpx.Request) -> httpx.HTTPError:
    """The httpx error for an aiohttp (or timeout) error raised while sending ``request``."""
    message = str(error) or type(error).__name__
    mapped: httpx.HTTPError
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        mapped = httpx.ConnectTimeout(message, request=request)
    elif isinstance(error, aiohttp.ServerTimeoutError | TimeoutError):
        mapped = httpx.ReadTimeout(message, request=request)
    elif isinstance(error, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        mapped = httpx.ProxyError(message, request=request)
    elif isinstance(error, aiohttp.ClientConnectorError | aiohttp.ServerFingerprintMismatch):
        # TLS failures land here too; the chained ssl error tells them apart.
        mapped = httpx.ConnectError(message, request=request)
    elif isinstance(
        error,
        aiohttp.ServerDisconnectedError
        | aiohttp.ClientPayloadError
        | aiohttp.ClientResponseError
        | aiohttp.RedirectClientError,
    ):
        mapped = httpx.RemoteProtocolError(message, request=request)
    elif isinstance(error, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        mapped = httpx.UnsupportedProtocol(message, request=request)
    elif isinstance(error, aiohttp.ClientConnectionResetError | aiohttp.ClientOSError):
        mapped = httpx.ReadError(message, request=request)
    else:
        mapped = httpx.TransportError(message, request=request)
    mapped.__cause__ = error
    return mapped


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as e:
            raise map_aiohttp_error(e, self._request) from e

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one aiohttp session (created on first use, in the loop).

    ``verify`` is what httpx takes: an SSL context, or a bool. Redirects are httpx's business;
    bodies are passed through undecoded so that httpx decodes them once. An idle connection
    is kept ``keepalive_s`` (aiohttp's 15 s by default) for the next request to its host.
    """

    def __init__(
        self,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
        keepalive_s: float | None = None,
    ):
        self._verify = verify
        self._limit = (limits.max_connections if limits else None) or 100
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            ssl_option: ssl.SSLContext | bool = self._verify
            if ssl_option is True:
                ssl_option = ssl.create_default_context()
            keepalive: dict[str, Any] = (
                {"keepalive_timeout": self._keepalive_s} if self._keepalive_s is not None else {}
            )
            connector = aiohttp.TCPConnector(limit=self._limit, ssl=ssl_option, **keepalive)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._ensure_session()
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        data = await request.aread()
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=data or None,
                allow_redirects=False,
                timeout=timeout,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            )
        except (TimeoutError, aiohttp.ClientError) as e:
            raise map_aiohttp_error(e, request) from e
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
