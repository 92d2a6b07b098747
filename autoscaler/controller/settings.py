"""Settings of the controller and of leader election (groups ``controller``, ``leader``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ControllerSettings", "LeaderSettings"]


class ControllerSettings(BaseModel):
    """How often the controller decides, and how it keeps history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_seconds: float = Field(
        15, gt=0, le=600, description="Seconds between two reconciles of every autoscaler."
    )
    history_step_seconds: float = Field(
        15,
        gt=0,
        le=3600,
        description="Grid step of the load history the forecasters read; the backtest's step, "
        "so that live forecasts are the ones `foresight backtest` measured (a coarser grid "
        "stretches the horizon to whole steps and over-provisions).",
    )
    status_every_seconds: float = Field(
        60,
        gt=0,
        le=3600,
        description="Status is written when it changes in substance, and at least this often.",
    )
    recreate_min_interval_seconds: float = Field(
        3600,
        ge=0,
        le=7 * 86_400,
        description="Recreate and InPlaceOrRecreate: at most one pod-template change (a rolling "
        "restart) per workload in this many seconds.",
    )
    resize_infeasible_timeout_seconds: float = Field(
        900,
        ge=0,
        le=86_400,
        description="InPlaceOrRecreate: a pod whose resize the kubelet has found Infeasible for "
        "this many seconds is resized through the pod template instead.",
    )
    resize_reprobe_seconds: float = Field(
        3600,
        gt=0,
        le=7 * 86_400,
        description="After the API server answered that it does not serve pods/resize (404, "
        "405), in-place resizes are tried again only after this many seconds.",
    )
    resize_every_seconds: float = Field(
        300,
        gt=0,
        le=86_400,
        description="Vertical decisions are made this often (and at once after an OOM kill).",
    )


class LeaderSettings(BaseModel):
    """Leader election through a coordination.k8s.io Lease."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Elect a leader; off: this process always acts.")
    namespace: str = Field("foresight", description="Namespace of the Lease.")
    name: str = Field("foresight-leader", description="Name of the Lease.")
    identity: str | None = Field(
        None, description="This replica's identity; unset: the host name and process id."
    )
    lease_seconds: float = Field(
        15, gt=0, le=300, description="A leader that has not renewed for this long is replaced."
    )
    renew_seconds: float = Field(
        5, gt=0, le=300, description="How often the leader renews, and a standby retries."
    )

    @model_validator(mode="after")
    def _renew_before_expiry(self) -> LeaderSettings:
        if self.renew_seconds >= self.lease_seconds:
            raise ValueError("renew_seconds must be < lease_seconds")
        return self
