"""Settings of remote write: one entry per receiver, as Prometheus' ``remote_write`` list.

Names follow Prometheus' configuration (``url``, ``name``, ``headers``, ``basic_auth``,
``bearer_token_file``, ``tls_config`` as ``tls``, ``queue_config``), with units in the names
of durations. Credentials are ``SecretStr`` (masked wherever settings are shown) or files read
at each connection, and are never logged.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["BasicAuth", "QueueSettings", "RemoteWriteSettings", "TlsSettings"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Set by the protocol or by the client itself; Prometheus refuses them in `headers` too.
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "host",
        "content-encoding",
        "content-length",
        "content-type",
        "user-agent",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "www-authenticate",
        "accept-encoding",
        "x-prometheus-remote-write-version",
        "prometheus-remote-write-version",
        "transfer-encoding",
        "upgrade",
    }
)


class BasicAuth(BaseModel):
    """HTTP basic authentication; the password inline or from a file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(description="User name.")
    password: SecretStr | None = Field(None, description="Password; never logged.")
    password_file: Path | None = Field(
        None, description="File holding the password, read at every connection."
    )

    @model_validator(mode="after")
    def _one_password(self) -> BasicAuth:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        return self


class TlsSettings(BaseModel):
    """TLS towards the receiver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = Field(None, description="CA bundle that signs the receiver's cert.")
    cert_file: Path | None = Field(None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(None, description="Key of the client certificate.")
    server_name: str | None = Field(None, description="Name to verify the receiver's cert by.")
    insecure_skip_verify: bool = Field(
        False, description="Do not verify the receiver's certificate (testing only)."
    )

    @model_validator(mode="after")
    def _pairs(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class QueueSettings(BaseModel):
    """How samples queue, batch and are retried (Prometheus' ``queue_config``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capacity: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="Samples read from the log and queued per shard before reading pauses; "
        "the rest waits in the log, nothing is dropped.",
    )
    min_shards: int = Field(1, ge=1, le=200, description="Fewest parallel senders.")
    max_shards: int = Field(
        8, ge=1, le=200, description="Most parallel senders, when sending falls behind."
    )
    max_samples_per_send: int = Field(
        2_000, ge=1, le=1_000_000, description="Most samples in one request."
    )
    batch_send_deadline_seconds: float = Field(
        5.0, gt=0, le=600, description="Longest a sample waits in a shard for its batch to fill."
    )
    min_backoff_seconds: float = Field(
        0.03, gt=0, le=600, description="First pause before a retry, doubled on each one."
    )
    max_backoff_seconds: float = Field(
        5.0, gt=0, le=3600, description="Longest pause between retries."
    )
    retry_on_http_429: bool = Field(
        True,
        description="Retry on 429 Too Many Requests (honouring Retry-After); off: drop the "
        "batch like any other 4xx.",
    )
    max_wal_held_bytes: int = Field(
        1 << 30,
        ge=0,
        description="Most bytes of sealed write-ahead log kept for this receiver while it "
        "falls behind; past it the oldest unsent segments are deleted (and counted).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> QueueSettings:
        if self.min_shards > self.max_shards:
            raise ValueError("min_shards must be <= max_shards")
        if self.min_backoff_seconds > self.max_backoff_seconds:
            raise ValueError("min_backoff_seconds must be <= max_backoff_seconds")
        return self


class RemoteWriteSettings(BaseModel):
    """One receiver of Prometheus remote write 1.0 (protobuf, snappy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="Endpoint, e.g. `http://prometheus:9090/api/v1/write`.")
    name: str | None = Field(
        None,
        description="Name in metrics and logs and of the saved position (letters, digits, "
        "`_.-`); default: derived from the URL. Changing it starts from the end of the log.",
    )
    remote_timeout_seconds: float = Field(30.0, gt=0, le=600, description="Timeout of one request.")
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra HTTP headers of every request; never logged."
    )
    basic_auth: BasicAuth | None = Field(None, description="HTTP basic authentication.")
    bearer_token: SecretStr | None = Field(None, description="Bearer token; never logged.")
    bearer_token_file: Path | None = Field(
        None, description="File holding the bearer token, read at every request."
    )
    tls: TlsSettings = Field(default_factory=TlsSettings, description="TLS to the receiver.")
    queue_config: QueueSettings = Field(
        default_factory=QueueSettings, description="Queues, batches and retries."
    )

    @model_validator(mode="after")
    def _valid(self) -> RemoteWriteSettings:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r}: need http:// or https://")
        if self.name is not None and not _NAME.fullmatch(self.name):
            raise ValueError(f"name {self.name!r}: use 1-64 letters, digits, '_', '.', '-'")
        auths = [
            a
            for a, v in (
                ("basic_auth", self.basic_auth),
                ("bearer_token", self.bearer_token),
                ("bearer_token_file", self.bearer_token_file),
            )
            if v is not None
        ]
        if len(auths) > 1:
            raise ValueError(f"set at most one of {', '.join(auths)}")
        reserved = sorted(h for h in self.headers if h.lower() in RESERVED_HEADERS)
        if reserved:
            raise ValueError(f"headers {', '.join(reserved)} are set by remote write itself")
        return self

    @property
    def queue_name(self) -> str:
        """The name in metrics, logs and the saved position."""
        return self.name or "rw-" + hashlib.sha256(self.url.encode()).hexdigest()[:6]
