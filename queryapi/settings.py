"""Settings of the Prometheus HTTP query API: the limits that keep the service alive."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QueryApiSettings(BaseModel):
    """Budget of queries that arrive over HTTP (rules and the controller are not bound by it).

    Prometheus' defaults are 2 minutes, 50 million samples and 20 concurrent queries; these are
    lower because queries here share one Python process with collection and the controller.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3_600,
        description="Longest time one query may take, waiting for a slot included; a request's "
        "`timeout` parameter can only shorten it (Prometheus' `--query.timeout`).",
    )
    max_samples: int = Field(
        20_000_000,
        ge=1,
        description="Most samples one query may load from the store (Prometheus' "
        "`--query.max-samples`); more is an `execution` error (HTTP 422).",
    )
    max_concurrent_queries: int = Field(
        4,
        ge=1,
        le=256,
        description="Queries evaluated at once (Prometheus' `--query.max-concurrency`); the "
        "others wait for a slot within their timeout.",
    )
