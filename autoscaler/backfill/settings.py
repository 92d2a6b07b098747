"""Settings of the history back-fill from an existing Prometheus (group ``history``)."""

from __future__ import annotations

from urllib.parse import urlsplit

import promql_parser
from pydantic import ConfigDict, Field, field_validator, model_validator

from runtime.endpoint import EndpointAuth

__all__ = ["HistorySettings"]


class HistorySettings(EndpointAuth):
    """History from a Prometheus-compatible server the cluster already runs: workloads with
    less history than the forecaster needs get it copied from there at start (and when their
    autoscaler is created), so forecasts are ready on day one. Off while `prometheus_url` is
    unset. Credentials and TLS as every Prometheus-compatible endpoint of foresight
    (:class:`runtime.endpoint.EndpointAuth`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prometheus_url: str | None = Field(
        None,
        description="Base URL of the server's HTTP API, e.g. "
        "`http://prometheus-server.monitoring:9090` (Thanos, Mimir with its `/prometheus` "
        "prefix, VictoriaMetrics alike); unset: no back-fill. Credentials never go in the URL.",
    )
    extra_matchers: str = Field(
        "",
        description='Label matchers added to every series read, e.g. `job="kubelet"` when '
        "cAdvisor metrics are scraped twice (PromQL matcher syntax, comma-separated).",
    )
    rate_window_seconds: float = Field(
        120,
        gt=0,
        le=3600,
        description="Window of `irate()` over `container_cpu_usage_seconds_total`: at least "
        "twice the server's scrape interval of the kubelets.",
    )
    chunk_hours: float = Field(
        6,
        gt=0,
        le=24 * 7,
        description="Hours of history asked in one `query_range` (bounded further by the "
        "11,000 points Prometheus returns per series).",
    )
    wait_seconds: float = Field(
        60,
        ge=0,
        le=3600,
        description="How long the controller leaves a new autoscaler alone while its history "
        "is read; after that it forecasts with what it has, and takes the history up once "
        "it arrives.",
    )
    retry_initial_seconds: float = Field(
        1, gt=0, le=600, description="First pause after a failed query; doubled per failure."
    )
    retry_max_seconds: float = Field(
        300, gt=0, le=3600, description="Longest pause between two tries; tries go on forever."
    )

    @field_validator("prometheus_url")
    @classmethod
    def _plain_http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"need an http:// or https:// URL with a host, got {url!r}")
        if "@" in parts.netloc:
            raise ValueError("credentials in the URL; use bearer_token_file or basic auth")
        if parts.query or parts.fragment:
            raise ValueError("the URL takes no query or fragment")
        return url.rstrip("/")

    @field_validator("extra_matchers")
    @classmethod
    def _matchers(cls, value: str) -> str:
        value = value.strip().strip(",")
        if not value:
            return ""
        try:
            parsed = promql_parser.parse(f"up{{{value}}}")
        except ValueError as e:
            raise ValueError(f"not PromQL label matchers: {value!r}: {e}") from e
        if not isinstance(parsed, promql_parser.VectorSelector):
            raise ValueError(f"not PromQL label matchers: {value!r}")
        return value

    @model_validator(mode="after")
    def _retries_in_order(self) -> HistorySettings:
        if self.retry_max_seconds < self.retry_initial_seconds:
            raise ValueError("retry_max_seconds must be >= retry_initial_seconds")
        return self
