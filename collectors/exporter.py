"""``/metrics``: what the collectors know, computed at scrape time by a custom Collector.

The registry is a parameter (each test builds its own); the HTTP side is a small aiohttp app
that the service extends with its health endpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collectors.state_metrics import Family

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class FamiliesCollector(Collector):
    """Yields the families a provider computes, each time Prometheus scrapes."""

    def __init__(self, provider: Callable[[], Sequence[Family]]) -> None:
        self._provider = provider

    def collect(self) -> Iterator[Metric]:
        for family in self._provider():
            names = sorted({k for labels, _ in family.samples for k in labels})
            metric: GaugeMetricFamily | CounterMetricFamily
            if family.kind == "counter":
                # prometheus-client adds the _total suffix back on exposition.
                metric = CounterMetricFamily(
                    family.name.removesuffix("_total"), family.help, labels=names
                )
            else:
                metric = GaugeMetricFamily(family.name, family.help, labels=names)
            for labels, value in family.samples:
                metric.add_metric([labels.get(n, "") for n in names], value)
            yield metric


def metrics_app(registry: CollectorRegistry) -> web.Application:
    """An aiohttp app serving ``GET /metrics`` from ``registry``."""

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app
