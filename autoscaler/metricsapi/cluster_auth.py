"""The front proxy's settings as the cluster publishes them, for a chart-installed foresight.

kube-apiserver writes its ``--requestheader-*`` flags into the ConfigMap
``kube-system/extension-apiserver-authentication`` (``requestheader-client-ca-file`` as PEM,
the others as JSON lists); every aggregated API server reads it (the chart's RoleBinding to
``extension-apiserver-authentication-reader`` allows it). Read once at start, when
``external_metrics.requestheader_client_ca_file`` is not set; a cluster without it (or a
refusal) leaves bearer tokens as the only way in, and says so in the log.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Mapping

from kubernetes import client as k8s

from autoscaler.metricsapi.auth import RequestHeader
from autoscaler.metricsapi.server import ExternalMetricsApi
from collectors.kube import KubeApiError, call
from runtime.backoff import Backoff
from runtime.clock import Clock

__all__ = ["CONFIGMAP", "parse_front_proxy", "trust_cluster_front_proxy"]

log = logging.getLogger(__name__)

CONFIGMAP = ("kube-system", "extension-apiserver-authentication")


def _list(data: Mapping[str, str], key: str, default: list[str]) -> list[str]:
    raw = data.get(key)
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"{key}: not a JSON list: {e}") from e
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key}: not a JSON list of strings")
    return value


def parse_front_proxy(data: Mapping[str, str]) -> tuple[RequestHeader, str] | None:
    """(how headers name the user, the CA in PEM) of the ConfigMap's ``data``; None when it
    has no request-header CA. Raises ValueError for a malformed list."""
    ca = data.get("requestheader-client-ca-file", "")
    if not ca.strip():
        return None
    header = RequestHeader(
        frozenset(_list(data, "requestheader-allowed-names", [])),
        tuple(_list(data, "requestheader-username-headers", ["X-Remote-User"])),
        tuple(_list(data, "requestheader-group-headers", ["X-Remote-Group"])),
        tuple(_list(data, "requestheader-extra-headers-prefix", ["X-Remote-Extra-"])),
    )
    return header, ca


async def trust_cluster_front_proxy(
    metrics_api: ExternalMetricsApi,
    api: k8s.ApiClient,
    clock: Clock,
    retry: Backoff,
    timeout_s: float,
) -> bool:
    """Read :data:`CONFIGMAP` and believe the front proxy it names; before serving. True when
    the front proxy is trusted."""
    namespace, name = CONFIGMAP
    where = f"configmap {namespace}/{name}"
    try:
        found = await call(
            k8s.CoreV1Api(api).read_namespaced_config_map,
            name,
            namespace,
            clock=clock,
            retry=retry,
            what=f"read {where}",
            _request_timeout=timeout_s,
        )
        parsed = parse_front_proxy(found.data or {})
    except (KubeApiError, ValueError) as e:
        log.warning(
            "external metrics: cannot read the front proxy's settings from %s (%s); only bearer "
            "tokens will be accepted",
            where,
            e,
        )
        return False
    if parsed is None or metrics_api.tls is None:
        log.warning("external metrics: %s names no request-header CA; only bearer tokens", where)
        return False
    header, ca = parsed
    try:
        metrics_api.tls.context.load_verify_locations(cadata=ca)
    except ssl.SSLError as e:
        log.warning("external metrics: the request-header CA of %s does not load: %s", where, e)
        return False
    metrics_api.tls.context.verify_mode = ssl.CERT_OPTIONAL
    metrics_api.guard.request_header = header
    log.info("external metrics: trusting the front proxy of %s", where)
    return True
