"""The forecasts the external metrics API publishes: the controller's latest snapshots."""

from __future__ import annotations

from autoscaler.controller.controller import Controller
from autoscaler.metricsapi.documents import ForecastView

__all__ = ["controller_views"]


def controller_views(controller: Controller) -> list[ForecastView]:
    """One view per autoscaler, as the controller's last reconcile left it."""
    return [
        ForecastView(
            namespace=s.namespace,
            autoscaler=s.name,
            workload_kind=s.target_kind,
            workload=s.target,
            mode=s.mode,
            quantile=s.quantile,
            forecast=s.forecast,
            load=s.load,
            desired=s.desired,
            resource=s.metric or None,
            horizon_seconds=s.horizon_seconds,
        )
        for s in controller.snapshots()
    ]
