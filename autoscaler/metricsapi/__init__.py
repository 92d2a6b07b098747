"""``external.metrics.k8s.io/v1beta1``: foresight's forecasts for HorizontalPodAutoscalers.

Teams that keep their HPAs (or KEDA ScaledObjects) read foresight's forecast peak as an
``External`` metric: kube-apiserver aggregates this API (an ``APIService``
``v1beta1.external.metrics.k8s.io`` pointing at foresight's Service) and proxies the HPA
controller's requests to it. Modules:

- :mod:`~autoscaler.metricsapi.documents`: the metrics and the JSON documents, pure;
- :mod:`~autoscaler.metricsapi.selector`: label selectors of the query string;
- :mod:`~autoscaler.metricsapi.auth`: front-proxy and bearer-token authentication, and
  SubjectAccessReview authorisation, on :class:`access.Guard`;
- :mod:`~autoscaler.metricsapi.server`: the aiohttp server;
- :mod:`~autoscaler.metricsapi.source`: the controller's snapshots as the values served.

:func:`external_metrics_api` builds the server ``foresight run`` starts on
``external_metrics.port`` when ``external_metrics.enabled``.
"""

from __future__ import annotations

from access import Authenticator, Authorizer, CacheTtl
from autoscaler.controller.controller import Controller
from autoscaler.metricsapi.auth import AggregatedGuard, request_header_of, serving_tls
from autoscaler.metricsapi.documents import METRICS, ForecastView
from autoscaler.metricsapi.server import ExternalMetricsApi
from autoscaler.metricsapi.settings import ExternalMetricsSettings
from autoscaler.metricsapi.source import controller_views
from runtime.clock import Clock

__all__ = [
    "METRICS",
    "ExternalMetricsApi",
    "ExternalMetricsSettings",
    "ForecastView",
    "external_metrics_api",
]


def external_metrics_api(
    settings: ExternalMetricsSettings,
    clock: Clock,
    controller: Controller,
    reviewers: tuple[Authenticator, Authorizer],
    ttl: CacheTtl,
) -> ExternalMetricsApi:
    """The server of ``settings`` over ``controller``'s forecasts, authenticating with
    ``reviewers`` (TokenReview, SubjectAccessReview) and the front-proxy CA when set.

    Raises :class:`access.TlsFilesError` for certificates that cannot be loaded."""
    assert settings.tls_cert_file is not None and settings.tls_key_file is not None
    ca = settings.requestheader_client_ca_file
    tls = serving_tls(settings.tls_cert_file, settings.tls_key_file, ca)
    request_header = (
        request_header_of(
            settings.requestheader_allowed_names,
            settings.requestheader_username_headers,
            settings.requestheader_group_headers,
            settings.requestheader_extra_headers_prefix,
        )
        if ca is not None
        else None
    )
    authenticator, authorizer = reviewers
    guard = AggregatedGuard(authenticator, authorizer, clock, ttl, request_header=request_header)
    return ExternalMetricsApi(
        guard, clock, lambda: controller_views(controller), lambda: controller.last_cycle_at, tls
    )
