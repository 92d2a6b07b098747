"""Settings of forecasting (group ``forecast``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ForecastSettings"]


class ForecastSettings(BaseModel):
    """Which model, which quantile, how much history, how often to re-fit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        "conformal",
        description="Forecaster name (`conformal`, `naive`, `seasonal_naive`, `holt_winters`, "
        "`quantile_gbm`) or `auto` to choose per workload by rolling-origin backtest. Default "
        "`conformal` (numpy only): the quantile of realised peak / load over the last week, "
        "taken per band of a risk score learned from the same time yesterday and last week, the "
        "last hour's jumps and the time of day, each band's quantile shrunk toward the pooled "
        "one when it rests on few bursts; a workload whose bands did not beat one quantile for "
        "all on its last day, or whose last day is expected to hold fewer than half an "
        "exceedance of the quantile, is scaled as `naive` scales it (current load times that "
        "one quantile); on the 15 s history grid at quantile 0.9995 that is every autoscaler "
        "whose horizon is over 75 s. In the backtest on the shared traces, at 60 s and 300 s "
        "pod startups, it is never worse than `naive` on either figure at quantiles from 0.98 "
        "to 0.9998, and has fewer violations at a lower cost wherever its bands act (of the "
        "quantiles measured: up to 0.9995 at 60 s, 0.997 at 300 s).",
    )
    # 0.9995, not 0.997: on the 17 shared traces outside the README's scaling table, at a 60 s
    # startup, 0.997 violated more often than the Predictive HPA at target 0.5 (0.170 %
    # against 0.112 %); 0.9995 gives 0.089 % at 2.16 times the oracle's cost, still below
    # the peers' safest settings (3 to 4 times).
    quantile: float = Field(
        0.9995, gt=0.5, lt=1, description="Quantile of the peak load that capacity should cover."
    )
    history_days: float = Field(
        7, gt=0, le=35, description="Days of history a model is fitted on (the most recent)."
    )
    min_history_hours: float = Field(
        24, gt=0, le=24 * 14, description="Less history than this: scale reactively."
    )
    max_gap_fraction: float = Field(
        0.05, ge=0, le=1, description="More missing samples than this fraction: scale reactively."
    )
    refit_hours: float = Field(
        24, gt=0, le=24 * 7, description="Models are re-fitted on this schedule, off the hot path."
    )
    validation_hours: float = Field(
        24, gt=0, le=24 * 7, description="Recent history held out to choose the model per workload."
    )
    quiet_offset: float = Field(
        0.5,
        ge=0,
        le=10,
        description="Offset added to load before taking ratios, as a fraction of the recent mean "
        "load, so that a quiet workload's relative jumps stay bounded.",
    )
    peak_cap_days: float = Field(
        1,
        ge=0,
        le=35,
        description="The forecast peak never exceeds the largest load of this many recent days "
        "(or the current load): headroom learned as a ratio to the level must not ask for more "
        "than any burst needed. 0 disables the cap.",
    )
    predict_every_seconds: float = Field(
        300,
        gt=0,
        le=3600,
        description="How often the learned model re-evaluates its headroom; live load is applied "
        "at every decision in between.",
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        # The registry imports these settings; it is complete by the time one is made.
        from autoscaler.forecast.registry import check_model_name  # noqa: PLC0415

        return check_model_name(value)
