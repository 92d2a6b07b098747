"""Integrations of receivers, registered by kind: where and how each notification is POSTed.

A receiver's ``webhook_configs`` and ``alertmanager_configs`` become :class:`Target`\\ s,
each named ``<receiver>/<kind>/<index>`` (the outbox entry's ``receiver``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from alerts.settings import AlertmanagerConfig, ReceiverSettings, WebhookConfig


@dataclass(frozen=True)
class Target:
    """One integration: where a receiver's notifications go."""

    receiver: str
    kind: str
    index: int
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    verify_tls: bool = True
    timeout_seconds: float = 10.0
    send_resolved: bool = True
    max_alerts: int = 0
    secret: SecretStr | None = field(default=None, repr=False)
    secret_file: Path | None = None
    grouped: bool = True

    @property
    def id(self) -> str:
        return f"{self.receiver}/{self.kind}/{self.index}"

    def secret_bytes(self) -> bytes | None:
        """The HMAC key, read at each use so that a rotated file takes effect."""
        if self.secret is not None:
            return self.secret.get_secret_value().encode()
        if self.secret_file is not None:
            return self.secret_file.read_bytes().strip()
        return None


def receiver_of(target_id: str) -> str:
    """The receiver name of an integration id."""
    return target_id.rsplit("/", 2)[0]


def _webhook(receiver: str, i: int, c: WebhookConfig) -> Target:
    return Target(
        receiver,
        "webhook",
        i,
        c.url,
        dict(c.headers),
        c.verify_tls,
        c.timeout_seconds,
        c.send_resolved,
        c.max_alerts,
        c.secret,
        c.secret_file,
    )


def _alertmanager(receiver: str, i: int, c: AlertmanagerConfig) -> Target:
    # Alertmanager groups by itself and expires alerts that are not re-sent, so alerts are
    # forwarded as they come, not through foresight's aggregation groups.
    return Target(
        receiver,
        "alertmanager",
        i,
        c.url.rstrip("/") + "/api/v2/alerts",
        dict(c.headers),
        c.verify_tls,
        c.timeout_seconds,
        grouped=False,
    )


_Builder = Callable[[ReceiverSettings], list[Target]]

KINDS: dict[str, _Builder] = {
    "webhook": lambda r: [_webhook(r.name, i, c) for i, c in enumerate(r.webhook_configs)],
    "alertmanager": lambda r: [
        _alertmanager(r.name, i, c) for i, c in enumerate(r.alertmanager_configs)
    ],
}


def kind(name: str) -> _Builder:
    """The builder of one integration kind; a wrong name lists the valid ones."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(
            f"unknown integration {name!r} (valid: {', '.join(sorted(KINDS))})"
        ) from None


def build_targets(receivers: Sequence[ReceiverSettings]) -> dict[str, Target]:
    """Every integration of every receiver, by id."""
    out: dict[str, Target] = {}
    for r in receivers:
        for name in KINDS:
            for t in kind(name)(r):
                out[t.id] = t
    return out
