"""Settings of the alert engine: rule evaluation, routing, receivers and delivery.

The notifier's settings are shaped like Alertmanager's configuration (``route``,
``receivers``, ``inhibit_rules``) so that an existing one can be pasted in. Durations
accept seconds or a Prometheus duration (``30s``, ``5m``, ``4h``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from alerts.notify.matchers import MatcherError, parse_matchers
from alerts.rules.durations import DurationError, parse_duration_ms

_DURATION_HELP = "seconds, or a duration such as `30s`"


def _seconds(value: Any) -> Any:
    """Seconds from a number or a Prometheus duration string."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return parse_duration_ms(value) / 1000
        except DurationError as e:
            raise ValueError(str(e)) from e
    return value


def _check_matchers(value: list[str]) -> list[str]:
    for text in value:
        try:
            parse_matchers(text)
        except MatcherError as e:
            raise ValueError(str(e)) from e
    return value


class RuleSettings(BaseModel):
    """Rule files and how they are evaluated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[Path] = Field(
        default_factory=list,
        description="Rule files or directories of `*.yml`/`*.yaml` (e.g. a mounted ConfigMap).",
    )
    builtin: bool = Field(
        True,
        description="Evaluate foresight's built-in rules (an alert of the same name in `files` "
        "replaces the built-in one).",
    )
    disabled_builtin: list[str] = Field(
        default_factory=list, description="Names of built-in rules not to evaluate."
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


class WebhookConfig(BaseModel):
    """One webhook of a receiver (Alertmanager's `webhook_configs` item)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="Where payloads are POSTed.")
    send_resolved: bool = Field(True, description="Also notify when alerts resolve.")
    max_alerts: int = Field(0, ge=0, description="Most alerts per payload; 0: no limit.")
    secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key for `X-Foresight-Signature`; never logged."
    )
    secret_file: Path | None = Field(None, description="File holding the HMAC key.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    verify_tls: bool = Field(True, description="Verify the receiver's TLS certificate.")
    timeout_seconds: float = Field(10.0, gt=0, le=300, description="Timeout of one attempt.")


class AlertmanagerConfig(BaseModel):
    """An Alertmanager that alerts are forwarded to (its `/api/v2/alerts`), ungrouped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="Base URL of the Alertmanager, e.g. `http://alertmanager:9093`.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    verify_tls: bool = Field(True, description="Verify the Alertmanager's TLS certificate.")
    timeout_seconds: float = Field(10.0, gt=0, le=300, description="Timeout of one attempt.")


class ReceiverSettings(BaseModel):
    """A named receiver and its integrations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Receiver name, referenced by routes.")
    webhook_configs: list[WebhookConfig] = Field(default_factory=list)
    alertmanager_configs: list[AlertmanagerConfig] = Field(default_factory=list)


class _RouteTimers(BaseModel):
    @field_validator(
        "group_wait", "group_interval", "repeat_interval", mode="before", check_fields=False
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return _seconds(value)


class ChildRoute(_RouteTimers):
    """A route below the root: unset fields are inherited from the parent."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    receiver: str | None = None
    matchers: list[str] = Field(default_factory=list)
    continue_: bool = Field(False, alias="continue")
    group_by: list[str] | None = None
    group_wait: float | None = Field(None, ge=0)
    group_interval: float | None = Field(None, gt=0)
    repeat_interval: float | None = Field(None, gt=0)
    routes: list[ChildRoute] = Field(default_factory=list)

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        return _check_matchers(value)


class RouteSettings(_RouteTimers):
    """The root of the routing tree: every alert enters here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    receiver: str = Field(
        "", description="Receiver of alerts no child route takes (empty: none, when no receivers)."
    )
    group_by: list[str] = Field(
        default_factory=lambda: ["alertname"],
        description="Labels that group alerts into one notification (`...`: all labels).",
    )
    group_wait: float = Field(
        30.0, ge=0, description=f"Wait before a new group's first notification, {_DURATION_HELP}."
    )
    group_interval: float = Field(
        300.0, gt=0, description=f"Wait between a group's notifications, {_DURATION_HELP}."
    )
    repeat_interval: float = Field(
        14_400.0, gt=0, description=f"Re-send of an unchanged group, {_DURATION_HELP}."
    )
    routes: list[ChildRoute] = Field(
        default_factory=list,
        description="Child routes (`receiver`, `matchers`, `continue`, `group_by`, timers, "
        "`routes`), as in Alertmanager.",
    )


class InhibitRule(BaseModel):
    """Mute alerts matching ``target_matchers`` while one matching ``source_matchers`` fires
    with the same values of the ``equal`` labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_matchers: list[str] = Field(min_length=1)
    target_matchers: list[str] = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        return _check_matchers(value)


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
    """Where alerts are sent: Alertmanager's `route`, `receivers` and `inhibit_rules`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: RouteSettings = Field(default_factory=RouteSettings)
    receivers: list[ReceiverSettings] = Field(
        default_factory=list,
        description="Named receivers with `webhook_configs` and `alertmanager_configs`.",
    )
    inhibit_rules: list[InhibitRule] = Field(
        default_factory=list,
        description="`source_matchers`, `target_matchers` and `equal`, as in Alertmanager.",
    )
    retention_seconds: float = Field(
        432_000.0,
        gt=0,
        description="How long expired silences and the notification log are kept, seconds.",
    )
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @model_validator(mode="after")
    def _receivers_exist(self) -> NotifySettings:
        names = [r.name for r in self.receivers]
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise ValueError(f"receivers[{i}].name: receiver {name!r} is defined twice")
            seen.add(name)
        valid = ", ".join(sorted(seen)) or "none defined"
        if self.route.receiver not in seen and (self.route.receiver or seen):
            raise ValueError(
                f"route.receiver: unknown receiver {self.route.receiver!r} (valid: {valid})"
            )
        _check_routes(self.route.routes, "route", seen, valid)
        return self


def _check_routes(routes: list[ChildRoute], where: str, names: set[str], valid: str) -> None:
    for i, r in enumerate(routes):
        at = f"{where}.routes[{i}]"
        if r.receiver is not None and r.receiver not in names:
            raise ValueError(f"{at}.receiver: unknown receiver {r.receiver!r} (valid: {valid})")
        _check_routes(r.routes, at, names, valid)
