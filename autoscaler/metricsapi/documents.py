"""What the external metrics API answers, as pure functions of the forecasts kept now.

A :class:`ForecastView` is one PredictiveAutoscaler as the controller last saw it. Only
autoscalers in mode ``Recommend`` are published: in ``Auto`` foresight scales the workload
itself, and an HPA following the same numbers would fight it.

Metrics (:data:`METRICS`, named as the same numbers are on ``/metrics``), one item per
autoscaler, labelled ``namespace``, ``autoscaler``, ``workload``, ``workload_kind`` and
``quantile`` (and ``resource``, ``horizon_seconds`` when the source knows them):

- ``foresight_autoscaler_forecast``: the forecast peak of the workload's total load over the
  autoscaler's horizon, at its quantile, in the unit of its metric (cores, bytes, or the
  query's unit). An HPA ``External`` metric with an ``AverageValue`` target of the load one
  replica carries asks ``ceil(peak / target)`` replicas, before the load arrives.
- ``foresight_autoscaler_desired_replicas``: the replicas foresight recommends (within
  min/max); with an ``AverageValue`` target of 1 an HPA follows foresight's own decision.
- ``foresight_autoscaler_load``: the load now, in the same unit as the peak.

The documents have the JSON shapes of ``k8s.io/metrics/pkg/apis/external_metrics/v1beta1``
and of ``metav1.APIResourceList`` and ``metav1.Status``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from autoscaler.metricsapi.selector import Selector
from runtime import names
from runtime.clock import to_datetime
from runtime.quantity import format_cpu

__all__ = [
    "GROUP",
    "GROUP_VERSION",
    "METRICS",
    "VERSION",
    "ForecastView",
    "api_group",
    "api_resource_list",
    "metric_value_list",
    "status",
]

GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
PUBLISHED_MODE = "Recommend"


@dataclass(frozen=True)
class ForecastView:
    """One autoscaler's latest numbers (None: not known yet)."""

    namespace: str
    autoscaler: str
    workload_kind: str
    workload: str
    mode: str
    quantile: float | None
    forecast: float | None
    load: float | None
    desired: int | None
    # The load's kind (cpu, memory, query) and the horizon, seconds, when the source knows them.
    resource: str | None = None
    horizon_seconds: float | None = None

    def labels(self) -> dict[str, str]:
        """The labels a selector matches and the item carries."""
        labels = {
            "namespace": self.namespace,
            "autoscaler": self.autoscaler,
            "workload": self.workload,
            "workload_kind": self.workload_kind,
        }
        if self.quantile is not None:
            labels["quantile"] = f"{self.quantile:g}"
        if self.resource is not None:
            labels["resource"] = self.resource
        if self.horizon_seconds is not None:
            labels["horizon_seconds"] = f"{self.horizon_seconds:g}"
        return labels


# Metric name → the value of a view it publishes.
# The names are those of the same numbers on /metrics: one name per quantity.
METRICS: Mapping[str, Callable[[ForecastView], float | None]] = {
    names.AUTOSCALER_FORECAST: lambda v: v.forecast,
    names.AUTOSCALER_DESIRED_REPLICAS: lambda v: None if v.desired is None else float(v.desired),
    names.AUTOSCALER_LOAD: lambda v: v.load,
}


def _rfc3339(ts: float) -> str:
    return to_datetime(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def metric_value_list(
    metric: str, namespace: str, selector: Selector, views: Iterable[ForecastView], at: float
) -> dict[str, Any]:
    """The ``ExternalMetricValueList`` of ``metric`` (a name of :data:`METRICS`) for the
    published autoscalers of ``namespace`` that ``selector`` matches, sorted by autoscaler."""
    value_of = METRICS[metric]
    items = []
    for view in sorted(views, key=lambda v: v.autoscaler):
        if view.namespace != namespace or view.mode != PUBLISHED_MODE:
            continue
        labels = view.labels()
        value = value_of(view)
        if value is None or not selector.matches(labels):
            continue
        items.append(
            {
                "metricName": metric,
                "metricLabels": labels,
                "timestamp": _rfc3339(at),
                # Milli-units, the precision an HPA compares quantities at.
                "value": format_cpu(max(value, 0.0)),
            }
        )
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": GROUP_VERSION,
        "metadata": {},
        "items": items,
    }


def api_resource_list() -> dict[str, Any]:
    """The discovery document of ``/apis/external.metrics.k8s.io/v1beta1``."""
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [
            {
                "name": name,
                "singularName": "",
                "namespaced": True,
                "kind": "ExternalMetricValueList",
                "verbs": ["get"],
            }
            for name in METRICS
        ],
    }


def api_group() -> dict[str, Any]:
    """The ``APIGroup`` document of ``/apis/external.metrics.k8s.io``."""
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [version],
        "preferredVersion": version,
    }


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def status(code: int, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A failure ``Status``, as the API server words it."""
    doc: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "InternalError"),
        "code": code,
    }
    if details:
        doc["details"] = dict(details)
    return doc
