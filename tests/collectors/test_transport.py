"""A scrape's body and failure reason are the same whichever way the scraper reaches the
server: httpx's own transport, httpx over aiohttp, or a :class:`ScrapeClient`'s direct GET;
against a local server that frames, compresses and fails responses as real ones do (Go's
Prometheus handler answers chunked, gzip when asked)."""

from __future__ import annotations

import gzip
import socket
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from aiohttp import web

from collectors.scrape import ScrapeHealth, ScrapeOutcome, Scraper, ScrapeTarget
from collectors.transport import AiohttpTransport, ScrapeClient, charset_of
from runtime.clock import VirtualClock

T0 = 1_700_000_000.0
CAP = 64 * 1024
TEXT = "".join(f'm{{pod="p{i}",namespace="n"}} {i}.5 1700000000000\n' for i in range(400))
BIG = "# " + "x" * (CAP + 1) + "\n"


def _gzip(text: str) -> bytes:
    return gzip.compress(text.encode(), 6, mtime=0)


def _accepts_gzip(request: web.Request) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "")


async def _chunked(
    request: web.Request, body: bytes, step: int, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    response = web.StreamResponse(headers=headers or {})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for at in range(0, len(body), step):
        await response.write(body[at : at + step])
    await response.write_eof()
    return response


async def _promhttp(request: web.Request) -> web.StreamResponse:
    """As Go's promhttp: chunked, gzip when the request accepts it."""
    if _accepts_gzip(request):
        return await _chunked(request, _gzip(TEXT), 2048, {"Content-Encoding": "gzip"})
    return await _chunked(request, TEXT.encode(), 4096)


def _routes() -> dict[str, Callable[[web.Request], object]]:
    gz = _gzip(TEXT)

    async def length(_: web.Request) -> web.Response:
        return web.Response(text=TEXT)

    async def gzip_length(_: web.Request) -> web.Response:
        return web.Response(body=gz, headers={"Content-Encoding": "gzip"})

    async def latin1(_: web.Request) -> web.Response:
        return web.Response(
            body='m{pod="caf\xe9"} 1\n'.encode("latin-1"),
            headers={"Content-Type": "text/plain; charset=ISO-8859-1"},
        )

    async def big_length(_: web.Request) -> web.Response:
        return web.Response(text=BIG)

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        return await _chunked(request, BIG.encode(), 4096)

    async def bomb(request: web.Request) -> web.StreamResponse:
        # Small on the wire, past the cap once inflated.
        return await _chunked(request, _gzip(BIG), 2048, {"Content-Encoding": "gzip"})

    async def corrupt(_: web.Request) -> web.Response:
        return web.Response(
            body=gz[:20] + b"\xff" * 40 + gz[60:], headers={"Content-Encoding": "gzip"}
        )

    async def truncated(_: web.Request) -> web.Response:
        return web.Response(body=gz[: len(gz) // 2], headers={"Content-Encoding": "gzip"})

    async def busy(_: web.Request) -> web.Response:
        return web.Response(status=503, text="busy", headers={"Retry-After": "120"})

    async def forbidden(_: web.Request) -> web.Response:
        return web.Response(status=403, text="Forbidden")

    async def moved(_: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/length"})

    return {
        "/promhttp": _promhttp,
        "/length": length,
        "/gzip-length": gzip_length,
        "/latin1": latin1,
        "/big-length": big_length,
        "/big-chunked": big_chunked,
        "/bomb": bomb,
        "/corrupt": corrupt,
        "/truncated": truncated,
        "/busy": busy,
        "/forbidden": forbidden,
        "/moved": moved,
    }


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[str]]]:
    """The server's base URL, and the Accept-Encoding of every request it got."""
    asked: list[str] = []
    app = web.Application()
    for path, handler in _routes().items():

        async def handle(request: web.Request, handler: Callable[..., object] = handler) -> object:
            asked.append(request.headers.get("Accept-Encoding", ""))
            return await handler(request)  # type: ignore[misc]

        app.router.add_get(path, handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", asked
    await runner.cleanup()


# Plain HTTP: no TLS context to build (seconds on a busy machine).
CLIENTS = {
    "httpx": lambda: httpx.AsyncClient(follow_redirects=False, verify=False),
    "httpx over aiohttp": lambda: httpx.AsyncClient(
        transport=AiohttpTransport(verify=False), follow_redirects=False
    ),
    "direct": lambda: ScrapeClient(verify=False),
}


async def _scrape(
    client: httpx.AsyncClient, url: str, clock: VirtualClock | None = None
) -> tuple[ScrapeOutcome, Scraper]:
    scraper = Scraper(
        client,
        clock or VirtualClock(start=T0, autoadvance=False),
        ScrapeHealth("kubelet"),
        concurrency=2,
        timeout_s=5,
        stagger_s=0,
        max_bytes=CAP,
        backoff_initial_s=5,
        backoff_max_s=600,
    )
    return await scraper.scrape(ScrapeTarget("n1", url)), scraper


CASES = [
    ("/promhttp", None),
    ("/length", None),
    ("/gzip-length", None),
    ("/big-length", "too_large"),
    ("/big-chunked", "too_large"),
    ("/bomb", "too_large"),
    ("/corrupt", "protocol"),
    ("/busy", "server_error"),
    ("/forbidden", "forbidden"),
    ("/moved", "http_error"),
]


@pytest.mark.parametrize("client_kind", CLIENTS)
@pytest.mark.parametrize(("path", "reason"), CASES)
async def test_every_client_reads_or_fails_a_response_alike(
    server: tuple[str, list[str]], client_kind: str, path: str, reason: str | None
) -> None:
    base, _ = server
    async with CLIENTS[client_kind]() as client:
        outcome, scraper = await _scrape(client, base + path)
    assert outcome.reason == reason, outcome.detail
    if reason is None:
        assert outcome.body == TEXT
    else:
        assert outcome.body is None and scraper.health.errors == {reason: 1}


async def test_a_truncated_gzip_body_is_a_protocol_error(server: tuple[str, list[str]]) -> None:
    # httpx hands out what it could inflate, the first half of the text.
    base, _ = server
    async with ScrapeClient(verify=False) as client:
        outcome, _ = await _scrape(client, base + "/truncated")
    assert outcome.reason == "protocol" and "truncated" in outcome.detail


@pytest.mark.parametrize("client_kind", CLIENTS)
async def test_retry_after_of_a_failed_scrape_is_honoured(
    server: tuple[str, list[str]], client_kind: str
) -> None:
    base, _ = server
    clock = VirtualClock(start=T0, autoadvance=False)
    async with CLIENTS[client_kind]() as client:
        outcome, scraper = await _scrape(client, base + "/busy", clock)
        clock.advance(60)  # past the first backoff (5 s), short of Retry-After (120 s)
        again = await scraper.scrape(outcome.target)
    assert (outcome.reason, again.reason) == ("server_error", "backoff")


@pytest.mark.parametrize("client_kind", CLIENTS)
async def test_the_body_is_decoded_by_its_charset_or_kept_as_bytes(
    server: tuple[str, list[str]], client_kind: str
) -> None:
    base, _ = server
    async with CLIENTS[client_kind]() as client:
        outcome, scraper = await _scrape(client, base + "/latin1")
        raw = await scraper.scrape(ScrapeTarget("n2", base + "/promhttp"), decode=False)
    assert outcome.body == 'm{pod="caf\xe9"} 1\n'
    assert raw.data == TEXT.encode() and raw.body is None


async def test_the_scrape_client_asks_for_gzip_alone_both_ways(
    server: tuple[str, list[str]],
) -> None:
    base, asked = server
    async with ScrapeClient(verify=False) as client:
        await _scrape(client, base + "/promhttp")
        await client.get(base + "/promhttp")
    assert asked == ["gzip", "gzip"]


def test_charset_of_a_content_type() -> None:
    assert charset_of(None) == "utf-8"
    assert charset_of("text/plain; version=0.0.4") == "utf-8"
    assert charset_of('text/plain; Charset="ISO-8859-1"') == "ISO-8859-1"
    assert charset_of("text/plain; charset=no-such-codec") == "utf-8"
