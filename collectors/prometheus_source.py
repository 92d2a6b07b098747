"""Reading a Prometheus-compatible server (Prometheus, Thanos, Mimir, VictoriaMetrics).

Instant and range queries over the standard HTTP API, to read metrics a cluster already has
and to backfill history so models need not wait days before forecasting. Failures become
:class:`PrometheusSourceError` with the server's ``errorType`` and message, and are retried
with backoff when the server is overloaded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from runtime.backoff import Backoff, retry_after_seconds
from runtime.clock import Clock
from tsdb import Store
from tsdb.exposition import parse_value
from tsdb.labels import Labels, make_labels

log = logging.getLogger(__name__)

# Prometheus refuses range queries with more points than this per series.
MAX_POINTS = 11_000
_RETRYABLE = frozenset({429, 502, 503, 504})


class PrometheusSourceError(Exception):
    """A query failed; ``error_type`` is the API's (``bad_data``, ``timeout``...) or ``http``."""

    def __init__(self, error_type: str, message: str, status: int = 0) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.status = status


@dataclass(frozen=True)
class RangeSeries:
    labels: Labels
    timestamps_ms: np.ndarray  # int64
    values: np.ndarray  # float64


class PrometheusSource:
    """Queries one server; ``headers`` carry auth (a bearer token, a tenant id...)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        clock: Clock,
        retry: Backoff,
        headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        """``headers`` may be a function, called for each request (credentials read from
        files then, so rotated ones are used)."""
        self._client = client
        self._base = base_url.rstrip("/")
        self._clock = clock
        self._retry = retry
        fixed = dict(headers or {}) if not callable(headers) else {}
        self._headers: Callable[[], Mapping[str, str]] = (
            headers if callable(headers) else lambda: fixed
        )
        self._timeout_s = timeout_s

    async def instant(self, query: str, time_s: float) -> list[tuple[Labels, float, float]]:
        """``(labels, timestamp_s, value)`` of an instant vector (scalars get no labels)."""
        data = await self._get("/api/v1/query", {"query": query, "time": _fmt(time_s)})
        kind, result = data["resultType"], data["result"]
        if kind == "vector":
            return [
                (
                    make_labels(item["metric"]),
                    float(item["value"][0]),
                    parse_value(item["value"][1]),
                )
                for item in result
            ]
        if kind == "scalar":
            return [((), float(result[0]), parse_value(result[1]))]
        raise PrometheusSourceError("bad_data", f"query returned a {kind}, not a vector")

    async def samples(self, selector: str, start_ms: int, end_ms: int) -> list[RangeSeries]:
        """The stored samples of ``selector`` with timestamps in ``[start_ms, end_ms]``.

        Asked as a range-vector instant query (``selector[Nms]`` at ``end_ms``), which every
        Prometheus-compatible server answers with the samples it holds, unlike remote read."""
        window_ms = max(end_ms - start_ms, 0) + 1
        data = await self._get(
            "/api/v1/query", {"query": f"{selector}[{window_ms}ms]", "time": _fmt_ms(end_ms)}
        )
        if data["resultType"] != "matrix":
            raise PrometheusSourceError("bad_data", f"{selector} returned a {data['resultType']}")
        out = []
        for item in data["result"]:
            points = item.get("values") or []
            stamps = np.array([round(float(t) * 1000) for t, _ in points], np.int64)
            values = np.array([parse_value(v) for _, v in points], np.float64)
            keep = stamps >= start_ms
            out.append(RangeSeries(make_labels(item["metric"]), stamps[keep], values[keep]))
        return out

    async def range(
        self, query: str, start_s: float, end_s: float, step_s: float
    ) -> list[RangeSeries]:
        """A range query, split into chunks the server accepts."""
        if step_s <= 0 or end_s < start_s:
            raise PrometheusSourceError("bad_data", "need step > 0 and end >= start")
        merged: dict[Labels, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        chunk = step_s * (MAX_POINTS - 1)
        at = start_s
        while at <= end_s:
            stop = min(at + chunk, end_s)
            data = await self._get(
                "/api/v1/query_range",
                {"query": query, "start": _fmt(at), "end": _fmt(stop), "step": _fmt(step_s)},
            )
            if data["resultType"] != "matrix":
                raise PrometheusSourceError(
                    "bad_data", f"range query returned {data['resultType']}"
                )
            for item in data["result"]:
                points = item.get("values") or []
                stamps = np.array([round(float(t) * 1000) for t, _ in points], np.int64)
                values = np.array([parse_value(v) for _, v in points], np.float64)
                parts = merged.setdefault(make_labels(item["metric"]), ([], []))
                parts[0].append(stamps)
                parts[1].append(values)
            at = stop + step_s
        return [
            RangeSeries(labels, np.concatenate(ts), np.concatenate(vs))
            for labels, (ts, vs) in merged.items()
        ]

    async def backfill(
        self,
        store: Store,
        query: str,
        start_s: float,
        end_s: float,
        step_s: float,
        name: str | None = None,
    ) -> int:
        """Copy a range query's result into the store (renamed to ``name`` if given)."""
        written = 0
        for series in await self.range(query, start_s, end_s, step_s):
            labels = dict(series.labels)
            if name is not None:
                labels["__name__"] = name
            if "__name__" not in labels:
                raise PrometheusSourceError(
                    "bad_data", f"{query!r} returns series without a name; pass a name"
                )
            ref = store.ref(make_labels(labels))
            n = len(series.values)
            store.append_batch(np.full(n, ref, np.int32), series.timestamps_ms, series.values)
            written += n
        return written

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                response = await self._client.get(
                    self._base + path,
                    params=params,
                    headers=dict(self._headers()),
                    timeout=self._timeout_s,
                )
            except httpx.TransportError as e:
                error = PrometheusSourceError("unreachable", f"{type(e).__name__}: {e}"[:300])
                retry_after = None
            else:
                if response.status_code < 400:
                    return self._data(response)
                error = self._error(response)
                retry_after = retry_after_seconds(
                    response.headers.get("retry-after"), self._clock.now()
                )
                if response.status_code not in _RETRYABLE:
                    raise error
            attempt += 1
            if self._retry.exhausted(attempt):
                raise error
            pause = self._retry.delay(attempt, retry_after)
            log.warning(
                "Prometheus query failed: %s; attempt %d, retrying in %.1f s", error, attempt, pause
            )
            await self._clock.sleep(pause)

    @staticmethod
    def _data(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as e:
            raise PrometheusSourceError("bad_response", f"not JSON: {response.text[:200]!r}") from e
        if body.get("status") != "success":
            raise PrometheusSourceError(body.get("errorType", "error"), body.get("error", ""))
        data: dict[str, Any] = body["data"]
        return data

    @staticmethod
    def _error(response: httpx.Response) -> PrometheusSourceError:
        try:
            body = response.json()
            return PrometheusSourceError(
                body.get("errorType", "http"), body.get("error", ""), response.status_code
            )
        except ValueError:
            return PrometheusSourceError(
                "http", f"HTTP {response.status_code}: {response.text[:200]}", response.status_code
            )


def _fmt_ms(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def _fmt(seconds: float) -> str:
    if math.isfinite(seconds) and seconds == int(seconds):
        return str(int(seconds))
    return f"{seconds:.3f}"
