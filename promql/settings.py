"""Settings of the PromQL evaluator."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PromQLSettings(BaseModel):
    """Windows, resource limits and time budget of PromQL evaluation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lookback_delta_seconds: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="How far back an instant selector looks for a sample (Prometheus' "
        "lookback delta); a sample exactly this old is not visible.",
    )
    default_subquery_step_seconds: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="Step of a subquery written without one (`x[1h:]`); Prometheus uses the "
        "rule group's evaluation interval.",
    )
    max_series: int = Field(
        500_000,
        ge=1,
        description="Most series one query may select, summed over its selectors.",
    )
    max_samples: int = Field(
        50_000_000,
        ge=1,
        description="Most samples one query may load from the store, summed over its selectors.",
    )
    timeout_seconds: float = Field(
        120.0, gt=0, le=3_600, description="Wall-clock budget of one query evaluation."
    )
    max_points: int = Field(
        11_000,
        ge=1,
        description="Most steps a range query may have (as in Prometheus' API).",
    )
