"""Settings of the alert engine: rule evaluation and notification delivery."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class RuleSettings(BaseModel):
    """Rule files and how they are evaluated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[Path] = Field(
        default_factory=list,
        description="Rule files or directories of `*.yml`/`*.yaml` (e.g. a mounted ConfigMap).",
    )
    evaluation_interval_seconds: float = Field(
        60.0, gt=0, le=3_600, description="Interval of groups that set none, seconds."
    )
    reload_check_seconds: float = Field(
        10.0, gt=0, le=3_600, description="How often rule files are checked for changes, seconds."
    )
    resend_delay_seconds: float = Field(
        60.0,
        ge=0,
        le=3_600,
        description="Minimum time between re-sends of a firing alert, seconds.",
    )
    external_url: str = Field(
        "", description="URL of this foresight, for `generatorURL` and `$externalURL`."
    )
    external_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to every notified alert."
    )
    state_dir: Path = Field(
        Path("data/alerts"), description="Where alert state, silences and the outbox are kept."
    )


class WebhookReceiverSettings(BaseModel):
    """One webhook receiver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Receiver name (the payload's `receiver`).")
    url: str = Field(description="Where payloads are POSTed.")
    secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key for `X-Foresight-Signature`; never logged."
    )
    secret_file: Path | None = Field(None, description="File holding the HMAC key.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    max_alerts: int = Field(0, ge=0, description="Most alerts per payload; 0: no limit.")
    verify_tls: bool = Field(True, description="Verify the receiver's TLS certificate.")
    timeout_seconds: float = Field(10.0, gt=0, le=300, description="Timeout of one attempt.")


class DeliverySettings(BaseModel):
    """Retries of notification delivery and when to give up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_backoff_seconds: float = Field(1.0, gt=0, le=600, description="First retry delay.")
    max_backoff_seconds: float = Field(300.0, gt=0, le=3_600, description="Longest retry delay.")
    jitter: float = Field(0.2, ge=0, le=1, description="Random share added to each delay.")
    dead_letter_after_seconds: float = Field(
        86_400.0, gt=0, description="A notification undelivered this long is dead-lettered."
    )


class NotifySettings(BaseModel):
    """Where alerts are sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    receivers: list[WebhookReceiverSettings] = Field(
        default_factory=list, description="Webhook receivers; every alert goes to all of them."
    )
    group_by: list[str] = Field(
        default_factory=lambda: ["alertname"],
        description="Labels that group alerts into one notification (`...`: all labels).",
    )
    group_wait_seconds: float = Field(
        30.0, ge=0, description="Wait before a new group's first notification."
    )
    group_interval_seconds: float = Field(
        300.0, gt=0, description="Wait between a group's notifications."
    )
    repeat_interval_seconds: float = Field(
        14_400.0, gt=0, description="Re-send of an unchanged group."
    )
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
