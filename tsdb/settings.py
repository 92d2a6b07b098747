"""Settings of the embedded time-series store."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StoreSettings(BaseModel):
    """Where samples live, how long, and how often they reach the disk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(
        Path("data"), description="Directory for the write-ahead log and blocks."
    )
    flush_interval_seconds: float = Field(
        1.0,
        gt=0,
        le=5,
        description="How often appended samples are written to the log; a crash loses at most "
        "this much.",
    )
    fsync: bool = Field(
        False,
        description="Also fsync on every flush: survives power loss, not only process crashes.",
    )
    block_duration_minutes: int = Field(
        120, ge=1, le=1440, description="Time span of one block of raw samples."
    )
    head_max_samples: int = Field(
        1_000_000,
        ge=1_000,
        le=100_000_000,
        description="Samples held in the mutable head before it is sealed into a block.",
    )
    raw_retention_hours: float = Field(
        24, gt=0, description="Raw samples older than this are downsampled to 1-minute."
    )
    minute_retention_days: float = Field(
        8, gt=0, description="1-minute samples older than this are downsampled to 5-minute."
    )
    five_minute_retention_days: float = Field(
        35, gt=0, description="5-minute samples older than this are deleted."
    )
    max_series: int = Field(
        2_000_000,
        ge=1,
        description="Upper bound on distinct series in memory; new series beyond it are rejected.",
    )

    @model_validator(mode="after")
    def _tiers_in_order(self) -> StoreSettings:
        if self.minute_retention_days * 24 < self.raw_retention_hours:
            raise ValueError("minute_retention_days must cover at least raw_retention_hours")
        if self.five_minute_retention_days < self.minute_retention_days:
            raise ValueError("five_minute_retention_days must be >= minute_retention_days")
        return self
