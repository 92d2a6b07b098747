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
    results_cache_mib: int = Field(
        256,
        ge=0,
        description="Memory (MiB, roughly counted) for the final steps of range queries kept "
        "between a dashboard's refreshes, so that a refresh evaluates only the newer steps; 0 "
        "turns the cache off.",
    )
    results_cache_freshness_seconds: float = Field(
        120.0,
        ge=0,
        description="Steps newer than this (seconds before now) are never kept (Cortex's "
        "`max_freshness`); a sample written further in the past (a history back-fill) makes "
        "the kept steps from its timestamp on evaluate again.",
    )
    shared_seconds: float = Field(
        5.0,
        ge=0,
        description="Queries over the same time (instant queries at the same time, range "
        "queries over the same start, end and step) arriving within this many seconds of the "
        "first share the values of their common subexpressions, as a dashboard's panels "
        "refreshed together do; 0 turns sharing off.",
    )
