"""Where ``foresight cost`` reads the series it needs: a Prometheus-compatible server, the
embedded store's data directory, or one ``/metrics`` page of a running foresight.

Each source returns *moments*: the value of every needed series at one step of the window.
Failures become :class:`CostSourceError`, naming the source.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping
from typing import Protocol

import httpx

from autoscaler.cost.inputs import SERIES, Samples
from collectors.prometheus_source import PrometheusSource, PrometheusSourceError
from promql import Engine, PromQLError, PromQLSettings
from tsdb import Store
from tsdb.exposition import ExpositionError, parse_exposition

Moments = list[dict[str, Samples]]


class CostSourceError(Exception):
    """The series could not be read; the message names the source."""


class SeriesSource(Protocol):
    """Reads :data:`~autoscaler.cost.inputs.SERIES` at every step of a window."""

    name: str

    async def moments(self, start_s: float, end_s: float, step_s: float) -> Moments: ...


Row = tuple[str, Mapping[str, str], Iterable[tuple[float, float]]]


def _bucket(rows: Iterable[Row]) -> Moments:
    """Group (series name, labels, points) by time, in time order, without NaNs."""
    at: dict[int, dict[str, list[tuple[Mapping[str, str], float]]]] = {}
    for name, labels, points in rows:
        plain = {k: v for k, v in labels.items() if k != "__name__"}
        for t, v in points:
            if not math.isnan(v):
                at.setdefault(round(t * 1000), {}).setdefault(name, []).append((plain, v))
    return [dict(at[t]) for t in sorted(at)]


class PrometheusSeries:
    """Range queries against a Prometheus-compatible HTTP API."""

    def __init__(self, source: PrometheusSource, url: str) -> None:
        self._source = source
        self.name = url

    async def moments(self, start_s: float, end_s: float, step_s: float) -> Moments:
        rows: list[Row] = []
        try:
            for metric in SERIES:
                for s in await self._source.range(metric, start_s, end_s, step_s):
                    points = zip((s.timestamps_ms / 1000).tolist(), s.values.tolist(), strict=True)
                    rows.append((metric, dict(s.labels), list(points)))
        except PrometheusSourceError as e:
            raise CostSourceError(f"{self.name}: {e}") from e
        return _bucket(rows)


class StoreSeries:
    """Range queries over the embedded store, with foresight's PromQL engine."""

    def __init__(self, store: Store, settings: PromQLSettings, name: str) -> None:
        self._engine = Engine(store, settings)
        self.name = name

    async def moments(self, start_s: float, end_s: float, step_s: float) -> Moments:
        start, end, step = int(start_s * 1000), int(end_s * 1000), max(1, int(step_s * 1000))
        rows: list[Row] = []
        try:
            for metric in SERIES:
                result = await asyncio.to_thread(self._engine.range, metric, start, end, step)
                for s in result.series:
                    points = zip((s.timestamps / 1000).tolist(), s.values.tolist(), strict=True)
                    rows.append((metric, dict(s.labels), list(points)))
        except PromQLError as e:
            raise CostSourceError(f"{self.name}: {e}") from e
        return _bucket(rows)


class MetricsPage:
    """One scrape of a running foresight's ``/metrics``: a single moment, now."""

    def __init__(self, client: httpx.AsyncClient, url: str, timeout_s: float = 30.0) -> None:
        self._client = client
        self.name = url
        self._timeout_s = timeout_s

    async def moments(self, start_s: float, end_s: float, step_s: float) -> Moments:
        try:
            response = await self._client.get(self.name, timeout=self._timeout_s)
            response.raise_for_status()
            exposition = parse_exposition(response.text)
        except httpx.HTTPError as e:
            raise CostSourceError(f"{self.name}: {type(e).__name__}: {e}"[:300]) from e
        except ExpositionError as e:
            raise CostSourceError(f"{self.name}: {e}") from e
        wanted = set(SERIES)
        rows = [
            (s.name, dict(s.labels), [(end_s, s.value)])
            for s in exposition.samples
            if s.name in wanted
        ]
        return _bucket(rows)
