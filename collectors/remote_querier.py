"""Selections from a Prometheus-compatible server, for the query engine's worker threads.

The engine is synchronous and runs off the event loop (rule rounds, history reads, API
queries); the HTTP client is the service's asynchronous one. A selection is handed to the
loop with :func:`asyncio.run_coroutine_threadsafe` and the worker waits for it, so requests
share the loop's connection pool and retries without a second client. Called on the loop
itself, a selection would wait for the loop it blocks: it fails at once instead.

Long ranges go out in chunks (``chunk_seconds``, a day by default), so no answer holds more
than a day of one selection's samples at a time on the server's side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np

from collectors.prometheus_source import PrometheusSource, PrometheusSourceError
from promql.buffered import RemoteStorageError
from runtime.endpoint import EndpointAuthError
from tsdb import Matcher, Series

__all__ = ["RemoteQuerier", "selector"]

DAY_MS = 86_400_000


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') + '"'


def selector(matchers: Sequence[Matcher]) -> str:
    """PromQL text selecting what ``matchers`` select, e.g. ``{__name__="up",job=~"a|b"}``."""
    return "{" + ",".join(f"{m.name}{m.type.value}{_quoted(m.value)}" for m in matchers) + "}"


class RemoteQuerier:
    """A querier over a Prometheus-compatible server; :meth:`bind` it to the running loop."""

    def __init__(self, chunk_seconds: float = 86_400.0, timeout_seconds: float = 120.0) -> None:
        self._chunk_ms = max(round(chunk_seconds * 1000), 1000)
        self._timeout_s = timeout_seconds
        self._source: PrometheusSource | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""

    def bind(self, source: PrometheusSource, loop: asyncio.AbstractEventLoop, url: str) -> None:
        """Send selections through ``source`` on ``loop`` (the service's, once it runs)."""
        self._source, self._loop, self.url = source, loop, url

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        """Series matching all matchers with their samples in ``[start_ms, end_ms]``."""
        text = selector(matchers)
        if self._loop is None or self._source is None:
            raise RemoteStorageError(f"remote store not connected yet for {text}")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RemoteStorageError(
                f"{text} needs the remote store, which is not read on the event loop"
            )
        future = asyncio.run_coroutine_threadsafe(
            self.select_async(matchers, start_ms, end_ms), self._loop
        )
        try:
            return future.result(self._timeout_s)
        except FutureTimeout as e:
            future.cancel()
            raise RemoteStorageError(
                f"remote store {self.url}: {text} took longer than {self._timeout_s:g} s"
            ) from e

    async def select_async(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[Series]:
        """:meth:`select`, on the loop."""
        assert self._source is not None
        text = selector(matchers)
        parts: dict[tuple[tuple[str, str], ...], tuple[list[np.ndarray], list[np.ndarray]]] = {}
        at = start_ms
        try:
            while at <= end_ms:
                stop = min(at + self._chunk_ms - 1, end_ms)
                for s in await self._source.samples(text, at, stop):
                    ts, vs = parts.setdefault(s.labels, ([], []))
                    ts.append(s.timestamps_ms)
                    vs.append(s.values)
                at = stop + 1
        except (PrometheusSourceError, EndpointAuthError) as e:
            raise RemoteStorageError(f"remote store {self.url}: {text}: {e}") from e
        return [
            Series(labels, np.concatenate(ts), np.concatenate(vs))
            for labels, (ts, vs) in parts.items()
            if any(len(t) for t in ts)
        ]
