"""The PredictiveAutoscalers the demo creates in the default scenario's cluster."""

from __future__ import annotations

from typing import Any

from autoscaler.resource.model import API_VERSION, KIND

__all__ = ["HORIZONTAL_TARGETS", "demo_autoscalers"]

# (namespace, deployment) the demo scores against the HPA.
HORIZONTAL_TARGETS = (("shop", "frontend"), ("shop", "api"))


def _pas(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def demo_autoscalers() -> list[dict[str, Any]]:
    """Replicas for the web shop, requests for the leaking worker, advice for the database."""
    horizontal = {
        "minReplicas": 2,
        "maxReplicas": 60,
        # The forecast quantile holds most of the headroom; 10 % more absorbs the first
        # minute of a surprise (a flash crowd) while new pods start.
        "metric": {"type": "CPU", "targetUtilization": 90},
        "scaleDownStabilizationSeconds": 300,
    }
    return [
        _pas(
            "shop",
            "frontend",
            {
                "targetRef": {"kind": "Deployment", "name": "frontend"},
                "mode": "Auto",
                "horizontal": horizontal,
                "forecast": {"horizonSeconds": 60},
            },
        ),
        _pas(
            "shop",
            "api",
            {
                "targetRef": {"kind": "Deployment", "name": "api"},
                "mode": "Auto",
                "horizontal": horizontal,
                "forecast": {"horizonSeconds": 90},
            },
        ),
        _pas(
            "batch",
            "queue-worker",
            {
                "targetRef": {"kind": "Deployment", "name": "queue-worker"},
                "mode": "Auto",
                "vertical": {
                    "updateMode": "InPlace",
                    "controlledResources": ["memory"],
                    "containerPolicies": [
                        {"containerName": "worker", "maxAllowed": {"memory": "4Gi"}}
                    ],
                },
            },
        ),
        _pas(
            "shop",
            "postgres",
            {
                "targetRef": {"kind": "StatefulSet", "name": "postgres"},
                "mode": "Recommend",
                "vertical": {"updateMode": "Off"},
            },
        ),
    ]
