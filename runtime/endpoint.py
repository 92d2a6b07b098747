"""How foresight reaches a Prometheus-compatible server: credentials and trust, in one model.

Credentials come from files read at each request, so a rotated token or password (a projected
service-account token, a Secret mounted as a volume) is picked up without a restart, and never
sit in the settings that ``foresight settings`` and ``status/config`` print.
"""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EndpointAuth", "EndpointAuthError"]


class EndpointAuthError(Exception):
    """A credential file cannot be read; the message names the file and the setting."""


class EndpointAuth(BaseModel):
    """Credentials and TLS trust for one server (bearer token or basic auth, not both)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bearer_token_file: Path | None = Field(
        None, description="File holding a bearer token, re-read on every request."
    )
    basic_auth_username: str | None = Field(None, description="User name for basic auth.")
    basic_auth_password_file: Path | None = Field(
        None, description="File holding the basic-auth password, re-read on every request."
    )
    ca_file: Path | None = Field(
        None, description="PEM bundle of the CAs to trust for https (default: the system's)."
    )
    insecure_skip_verify: bool = Field(
        False, description="Skip TLS verification (for tests; never in production)."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers, e.g. `X-Scope-OrgID` for a Mimir or Cortex tenant.",
    )
    timeout_seconds: float = Field(60.0, gt=0, le=600, description="Timeout of one request.")

    @model_validator(mode="after")
    def _one_scheme(self) -> EndpointAuth:
        if self.bearer_token_file is not None and self.basic_auth_username is not None:
            raise ValueError("set bearer_token_file or basic_auth_username, not both")
        if (self.basic_auth_username is None) != (self.basic_auth_password_file is None):
            raise ValueError("basic auth needs both basic_auth_username and its password file")
        return self

    def request_headers(self) -> dict[str, str]:
        """The headers of one request, credentials read from their files now."""
        headers = dict(self.headers)
        if self.bearer_token_file is not None:
            token = _read(self.bearer_token_file, "bearer_token_file")
            headers["Authorization"] = f"Bearer {token}"
        elif self.basic_auth_username is not None and self.basic_auth_password_file is not None:
            password = _read(self.basic_auth_password_file, "basic_auth_password_file")
            pair = f"{self.basic_auth_username}:{password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return headers

    def verify(self) -> ssl.SSLContext | bool:
        """What an HTTP client verifies the server's certificate with."""
        if self.insecure_skip_verify:
            return False
        if self.ca_file is not None:
            return ssl.create_default_context(cafile=str(self.ca_file))
        return True


def _read(path: Path, setting: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise EndpointAuthError(f"{setting} {path}: {e.strerror or e}") from e
