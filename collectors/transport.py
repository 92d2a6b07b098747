"""An httpx transport that sends requests with aiohttp, for scraping thousands of endpoints.

httpx's own pool costs about 2 ms of CPU per request at a few dozen connections (its pool
bookkeeping is quadratic in the connections it holds), which alone is ~10 s per cycle at
5,000 kubelets; aiohttp's connector costs ~0.2 ms. The scraper keeps speaking httpx — its
errors, responses and streaming — and only the wire underneath changes.

A scrape only ever GETs a whole body, and even over aiohttp httpx's own work per request
(building the request, cookies, auth and redirect steps, the response's decoders and chunks)
costs about 0.35 ms, several seconds a cycle at 5,000 kubelets with three paths each. So a
:class:`ScrapeClient` (the httpx client the collectors build) also fetches bodies directly
over its aiohttp session (:meth:`ScrapeClient.get_body`), with the same headers, errors and
limits as a request through httpx; any other httpx client (a test's mock transport) is
used through httpx.

Every aiohttp error becomes an httpx error in one place (:func:`map_aiohttp_error`), chained
with ``from``, so :func:`collectors.scrape.classify` sees only httpx errors and can still tell
a TLS failure from a refused connection by the cause.
"""

from __future__ import annotations

import codecs
import functools
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

import aiohttp
import httpx
from multidict import CIMultiDict

# zlib-ng inflates a cAdvisor response (2.4 MB) in 0.5 ms where zlib takes 1.4: seconds a
# cycle at 5,000 kubelets.
from zlib_ng import zlib_ng

__all__ = [
    "AiohttpTransport",
    "ResponseTooLarge",
    "ScrapeClient",
    "charset_of",
    "map_aiohttp_error",
]

_CHUNK = 64 * 1024
# What a response may have buffered, unread, before aiohttp stops reading its socket: a
# scrape reads the whole body anyway, and pausing at aiohttp's 128 KiB costs two epoll
# calls per 64 KiB of a cAdvisor response (megabytes).
_READ_BUFFER = 4 * 2**20
# Go's Prometheus handler compresses with gzip when asked (as Prometheus asks), to a
# fiftieth of a cAdvisor response: less to copy from the socket than the text itself.
ACCEPT_ENCODING = "gzip"


# The module's error class (its stub calls it an instance).
_INFLATE_ERROR = cast("type[Exception]", zlib_ng.error)


class ResponseTooLarge(Exception):
    """The body went past the size cap."""


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


def charset_of(content_type: str | None) -> str:
    """The ``charset`` of a Content-Type header, or UTF-8 (when absent or unknown)."""
    if content_type:
        for param in content_type.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                name = value.strip().strip('"')
                try:
                    codecs.lookup(name)
                except LookupError:
                    break
                return name
    return "utf-8"


def _gunzip(data: bytes, max_bytes: int, url: str) -> bytes:
    """A gzip body inflated, at most ``max_bytes`` of it."""
    inflate = zlib_ng.decompressobj(16 + zlib_ng.MAX_WBITS)
    try:
        out = inflate.decompress(data, max_bytes + 1)
    except _INFLATE_ERROR as e:
        raise httpx.DecodingError(f"gzip: {e}", request=httpx.Request("GET", url)) from e
    if len(out) > max_bytes:
        raise ResponseTooLarge(f"body larger than {max_bytes} bytes")
    if not inflate.eof:
        raise httpx.DecodingError("gzip: truncated body", request=httpx.Request("GET", url))
    return out


def _status_error(status: int, reason: str, headers: Any, url: str) -> httpx.HTTPStatusError:
    """The error httpx's ``raise_for_status`` raises for this response."""
    request = httpx.Request("GET", url)
    response = httpx.Response(status, headers=headers, request=request)
    kind = {1: "Informational response", 3: "Redirect response", 4: "Client error"}.get(
        status // 100, "Server error"
    )
    return httpx.HTTPStatusError(
        f"{kind} '{status} {reason}' for url '{url}'", request=request, response=response
    )


@functools.lru_cache(maxsize=16)
def _timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)


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

    async def get_body(
        self, url: str, headers: CIMultiDict[str], timeout_s: float | None, max_bytes: int
    ) -> tuple[bytes, str | None]:
        """The body of a GET of ``url`` (gzip inflated) and its Content-Type, as a request
        through httpx would have them: httpx's errors (for a status other than 2xx, too),
        :class:`ResponseTooLarge` past ``max_bytes``."""
        session = self._ensure_session()
        try:
            async with session.get(
                url,
                headers=headers,
                allow_redirects=False,
                timeout=_timeout(timeout_s),
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
                read_bufsize=_READ_BUFFER,
            ) as response:
                status = response.status
                if not 200 <= status < 300:
                    raise _status_error(status, response.reason or "", response.raw_headers, url)
                length = response.content_length
                if length is not None and length > max_bytes:
                    raise ResponseTooLarge(f"body larger than {max_bytes} bytes")
                body = await _read_capped(response.content, max_bytes)
                encoding = response.headers.get("Content-Encoding", "").strip().lower()
                content_type = response.headers.get("Content-Type")
        except (TimeoutError, aiohttp.ClientError) as e:
            raise map_aiohttp_error(e, httpx.Request("GET", url)) from e
        if encoding == "gzip":
            body = _gunzip(body, max_bytes, url)
        elif encoding not in ("", "identity"):
            raise httpx.DecodingError(
                f"content encoding {encoding!r} was not asked for",
                request=httpx.Request("GET", url),
            )
        return body, content_type

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_capped(stream: aiohttp.StreamReader, max_bytes: int) -> bytes:
    """Everything ``stream`` has until its end, or :class:`ResponseTooLarge` past
    ``max_bytes``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await stream.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise ResponseTooLarge(f"body larger than {max_bytes} bytes")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class ScrapeClient(httpx.AsyncClient):
    """The httpx client of metric scrapes: aiohttp on the wire (:class:`AiohttpTransport`),
    gzip asked for, no redirects, and :meth:`get_body` for whole bodies without httpx's
    per-request work."""

    def __init__(
        self,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
        keepalive_s: float | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self._wire = AiohttpTransport(verify, limits, keepalive_s)
        super().__init__(
            transport=self._wire,
            timeout=timeout_s,
            follow_redirects=False,
            headers={"Accept-Encoding": ACCEPT_ENCODING},
        )
        self._base_headers = CIMultiDict(self.headers.items())

    async def get_body(
        self, url: str, headers: Iterable[tuple[str, str]], timeout_s: float, max_bytes: int
    ) -> tuple[bytes, str | None]:
        """The body of a GET of ``url`` and its Content-Type; ``headers`` are added to the
        client's own (see :meth:`AiohttpTransport.get_body`)."""
        merged = self._base_headers.copy()
        for name, value in headers:
            merged[name] = value
        return await self._wire.get_body(url, merged, timeout_s, max_bytes)
