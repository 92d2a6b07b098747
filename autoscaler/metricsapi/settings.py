"""Settings of the external metrics API (group ``external_metrics``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ExternalMetricsSettings"]


class ExternalMetricsSettings(BaseModel):
    """``external.metrics.k8s.io/v1beta1`` for HorizontalPodAutoscalers and KEDA: the forecasts
    of PredictiveAutoscalers in mode `Recommend`, on a TLS port of their own, for the API
    server that aggregates it (an `APIService`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False,
        description="Serve the external metrics API. Only one server of this API group can be "
        "registered per cluster: not where KEDA (or another adapter) holds it.",
    )
    port: int = Field(
        6443, ge=0, le=65535, description="HTTPS port of the external metrics API (0 picks one)."
    )
    tls_cert_file: Path | None = Field(
        None,
        description="Serving certificate (PEM, with its chain) the API server verifies with the "
        "APIService's caBundle; required when enabled. Read again when it changes.",
    )
    tls_key_file: Path | None = Field(None, description="The private key (PEM) of `tls_cert_file`.")
    requestheader_client_ca_file: Path | None = Field(
        None,
        description="CA (PEM) of the API server's front-proxy client certificate "
        "(kube-apiserver `--requestheader-client-ca-file`; the `requestheader-client-ca-file` "
        "of the ConfigMap kube-system/extension-apiserver-authentication). A request with a "
        "client certificate it signed acts as the user its headers name. Unset: the CA and "
        "the `requestheader_*` lists are read from that ConfigMap at start (the chart's "
        "RoleBinding allows it); without it only bearer tokens (TokenReview) authenticate.",
    )
    requestheader_allowed_names: list[str] = Field(
        default_factory=list,
        description="Common names the front-proxy certificate may have (kube-apiserver "
        "`--requestheader-allowed-names`); empty: any certificate the CA signed. With "
        "`requestheader_client_ca_file` only.",
    )
    requestheader_username_headers: list[str] = Field(
        default_factory=lambda: ["X-Remote-User"],
        min_length=1,
        description="Headers naming the user, first non-empty wins.",
    )
    requestheader_group_headers: list[str] = Field(
        default_factory=lambda: ["X-Remote-Group"], description="Headers naming the groups."
    )
    requestheader_extra_headers_prefix: list[str] = Field(
        default_factory=lambda: ["X-Remote-Extra-"],
        description="Header prefixes of the user's extra attributes.",
    )

    @model_validator(mode="after")
    def _tls_when_enabled(self) -> ExternalMetricsSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.enabled and self.tls_cert_file is None:
            raise ValueError(
                "enabled needs tls_cert_file and tls_key_file: the API server reaches an "
                "aggregated API over HTTPS only"
            )
        return self
