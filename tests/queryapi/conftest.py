"""Fixtures of the query API tests: a store with known series, the API served over loopback
from a thread of its own (so that blocking clients, promtool among them, can call it), and a
real Prometheus holding the same samples."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pytest
from aiohttp import web
from aiohttp.typedefs import Middleware

from promql import Engine
from queryapi import QueryApi, QueryApiSettings
from runtime.clock import VirtualClock
from tests.support.external import require_binary
from tests.support.prometheus import blocks_from_store, running_prometheus
from tsdb import Store, StoreSettings

BASE_MS = 1_700_000_000_000  # a whole hour
SCRAPE_MS = 15_000
HOURS = 2
# Query times between samples (which sit on odd milliseconds), so that Prometheus 2.42's
# windows closed on the left and foresight's open ones select the same samples.
AT_S = (BASE_MS + HOURS * 3_600_000 - 600_000) / 1000
START_S = AT_S - 1_800
END_S = AT_S
RETAIN = "--storage.tsdb.retention.time=36500d"
NOW_S = BASE_MS / 1000 + HOURS * 3600


def cluster_samples(seed: int = 3) -> list[tuple[dict[str, str], list[int], list[float]]]:
    """Counters, gauges and a histogram of two jobs, every sample on an odd millisecond."""
    rng = np.random.default_rng(seed)
    steps = HOURS * 3_600_000 // SCRAPE_MS
    out = []

    def stamps() -> list[int]:
        jitter = rng.integers(1, 2_000, steps) | 1
        return (BASE_MS + np.arange(steps) * SCRAPE_MS + jitter).tolist()

    for job in ("api", "db"):
        for inst in ("0", "1", "2"):
            counts = np.cumsum(rng.poisson(5, steps)).astype(float)
            out.append(
                ({"__name__": "req_total", "job": job, "inst": inst}, stamps(), counts.tolist())
            )
            walk = 500 + np.cumsum(rng.normal(0, 10, steps))
            out.append(({"__name__": "mem", "job": job, "inst": inst}, stamps(), walk.tolist()))
    total = np.zeros(steps)
    for le in ("0.1", "0.5", "1", "+Inf"):
        total = total + np.cumsum(rng.poisson(3, steps))
        out.append(({"__name__": "lat_bucket", "le": le, "job": "api"}, stamps(), total.tolist()))
    tiny = rng.uniform(1e-9, 1e-7, steps)
    out.append(({"__name__": "tiny", "job": "api"}, stamps(), tiny.tolist()))
    huge = rng.uniform(1e21, 1e22, steps)
    out.append(({"__name__": "huge", "job": "db"}, stamps(), huge.tolist()))
    return out


def filled_store() -> Store:
    """An in-memory store holding :func:`cluster_samples`."""
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    for labels, times, values in cluster_samples():
        ref = store.ref(labels)
        for t, v in zip(times, values, strict=True):
            store.append(ref, t, v)
    return store


@contextmanager
def served(
    api: QueryApi,
    middlewares: Sequence[Middleware] = (),
    make_app: Callable[[QueryApi], web.Application] | None = None,
) -> Iterator[str]:
    """The API's routes (or the application ``make_app`` builds of them) on a free loopback
    port, served by an event loop in its own thread; yields the base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="query-api-test", daemon=True)
    thread.start()

    async def start() -> tuple[web.AppRunner, int]:
        if make_app is not None:
            app = make_app(api)
        else:
            app = web.Application(middlewares=list(middlewares))
            app.add_routes(api.routes())
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        return runner, int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
        api.close()


ServeApi = Callable[..., str]


@pytest.fixture
def serve_api() -> Iterator[ServeApi]:
    """Serve a :class:`QueryApi` over a store (default: :func:`filled_store`); returns the
    URL. Keyword arguments go to :class:`QueryApiSettings`, ``config``/``metadata`` to the
    API, ``middlewares`` to the application or ``make_app`` builds it."""
    stack: list[Callable[[], None]] = []

    def serve(store: Store | None = None, engine: Engine | None = None, **kw: object) -> str:
        store = store if store is not None else filled_store()
        extra = {k: kw.pop(k) for k in ("config", "metadata") if k in kw}
        middlewares: Sequence[Middleware] = kw.pop("middlewares", ())  # type: ignore[assignment]
        make_app: Callable[[QueryApi], web.Application] | None = kw.pop("make_app", None)  # type: ignore[assignment]
        api = QueryApi(
            engine or Engine(store),
            store,
            QueryApiSettings(**kw),  # type: ignore[arg-type]
            VirtualClock(NOW_S),
            **extra,  # type: ignore[arg-type]
        )
        context = served(api, middlewares, make_app)
        url = context.__enter__()
        stack.append(lambda: context.__exit__(None, None, None))
        stack.append(store.close)
        return url

    yield serve
    for undo in reversed(stack):
        undo()


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The same samples in a real Prometheus and behind foresight's API: their base URLs."""
    require_binary("promtool")
    require_binary("prometheus")
    store = filled_store()
    work = tmp_path_factory.mktemp("prometheus")
    tsdb = blocks_from_store(store, work)
    api = QueryApi(Engine(store), store, QueryApiSettings(), VirtualClock(NOW_S))
    try:
        with (
            running_prometheus(work, "global:\n  scrape_interval: 1m\n", tsdb, RETAIN) as theirs,
            served(api) as ours,
        ):
            yield ours, theirs
    finally:
        store.close()
