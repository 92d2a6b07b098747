"""Settings of the scaling policies (group ``policy``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["HorizontalSettings", "PolicySettings", "VerticalSettings"]


class HorizontalSettings(BaseModel):
    """Replica count: bounds, target, stabilisation and step limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_replicas: int = Field(1, ge=1, le=10_000, description="Fewest replicas ever set.")
    max_replicas: int = Field(100, ge=1, le=10_000, description="Most replicas ever set.")
    target_utilisation: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Fraction of a replica's capacity the forecast peak may use (the forecast "
        "quantile already holds the headroom for surprises).",
    )
    scale_down_stabilisation_seconds: float = Field(
        300,
        ge=0,
        le=3600,
        description="Scale down only to the highest recommendation of this many seconds.",
    )
    scale_down_tolerance: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Scale down only to a count that holds the need with this fraction to "
        "spare: a band against flapping when the forecast sits at a replica boundary.",
    )
    max_step_up: int | None = Field(
        None, ge=1, description="Most replicas added in one decision; unset means no limit."
    )
    max_step_down: int | None = Field(
        None, ge=1, description="Most replicas removed in one decision; unset means no limit."
    )
    stale_after_seconds: float = Field(
        120,
        gt=0,
        le=3600,
        description="Load older than this counts as missing: hold the replica count.",
    )

    @model_validator(mode="after")
    def _bounds_in_order(self) -> HorizontalSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must be <= max_replicas")
        return self


class VerticalSettings(BaseModel):
    """Container requests: percentiles, margins, bounds and hysteresis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    half_life_hours: float = Field(24, gt=0, le=24 * 30, description="Decay half-life of usage.")
    target_percentile: float = Field(0.9, gt=0, lt=1, description="Percentile for the request.")
    lower_percentile: float = Field(0.5, gt=0, lt=1, description="Lower bound percentile.")
    upper_percentile: float = Field(0.95, gt=0, lt=1, description="Upper bound percentile.")
    margin: float = Field(1.15, ge=1, le=3, description="Safety factor on every percentile.")
    forecast_margin: float = Field(
        1.05,
        ge=1,
        le=3,
        description="Safety factor on the target percentile when a usage forecast floors the "
        "request: the forecast absorbs rises in level, which the VPA margin otherwise covers.",
    )
    cpu_recent_hours: float = Field(
        2,
        gt=0,
        le=48,
        description="CPU forecast for the next decision interval: usage of this many recent hours.",
    )
    cpu_peak_percentile: float = Field(
        0.9,
        gt=0,
        lt=1,
        description="CPU request is at least this percentile of the recent hours' usage.",
    )
    cpu_calibration_days: float = Field(
        7,
        ge=0,
        le=35,
        description="CPU request: each forecast of the coming hour gets the margin its usage "
        "ratios of this many recent days call for (in hours of the same kind, calm or within "
        "8 hours after usage above the histogram target, once their samples would exceed it "
        "20 times at the risk), and the forecast that would have left the least slack sets "
        "the request; 0 turns calibration off (the recent hours' percentile floors the "
        "histogram target).",
    )
    cpu_throttle_target: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="CPU request: fraction of the calibration days' samples its calibrated "
        "target may be exceeded by (throttled; the hysteresis adds some); unset means as "
        "often as the histogram target (target percentile × margin, the VPA's request) was "
        "exceeded on them after the container's first day, raised toward how often the "
        "request a VPA would hold was exceeded (at most threefold) while foresight's decided "
        "requests were exceeded less than 0.9 times as often. Either is cut (to a quarter at most) "
        "while the recorded targets were exceeded more often than it allows, over those days "
        "or the last one.",
    )
    cpu_fallback: bool = Field(
        True,
        description="CPU request: the histogram target (target percentile × margin, the VPA's "
        "request) instead of the calibrated forecast while the calibrated targets of the "
        "calibration days, each judged on the usage that followed it, left more mean slack "
        "than the histogram targets of those hours, or have no such record yet.",
    )
    memory_peak_days: float = Field(
        7, gt=0, le=35, description="Memory request holds the peak usage of this many days."
    )
    memory_peak_margin: float = Field(
        1.1, ge=1, le=3, description="Memory request is at least that peak × this."
    )
    limit_ratio: float | None = Field(
        None,
        ge=1,
        le=10,
        description="Limit = request × this; unset leaves limits alone.",
    )
    hysteresis: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Resize only when the target moves by more than this fraction, or the "
        "current request is outside the recommended bounds.",
    )
    oom_bump_bytes: int = Field(
        100 * 2**20, ge=0, description="After an OOM kill, memory ≥ used + this (bytes)."
    )
    oom_bump_ratio: float = Field(
        1.2, ge=1, le=5, description="After an OOM kill, memory ≥ used × this."
    )


class PolicySettings(BaseModel):
    """Horizontal and vertical policy settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizontal: HorizontalSettings = Field(default_factory=HorizontalSettings)
    vertical: VerticalSettings = Field(default_factory=VerticalSettings)
