"""The PredictiveAutoscalers the demo creates: its own in the default scenario's cluster, or
those a scenario file declares."""

from __future__ import annotations

from typing import Any

from autoscaler.resource.model import API_VERSION, KIND
from simulator.scenario import Scenario

__all__ = ["HORIZONTAL_TARGETS", "demo_autoscalers", "scenario_autoscalers"]

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
        *(
            _pas(
                ns,
                name,
                {
                    "targetRef": {"kind": "Deployment", "name": name},
                    "mode": "Auto",
                    "horizontal": horizontal,
                    "forecast": {"horizonSeconds": horizon},
                },
            )
            # Horizons: pod startup plus one decision interval, rounded up.
            for (ns, name), horizon in zip(HORIZONTAL_TARGETS, (60, 90), strict=True)
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


def scenario_autoscalers(scenario: Scenario) -> list[dict[str, Any]]:
    """The objects a scenario declares under ``autoscalers``."""
    return [_pas(a.namespace, a.name, dict(a.spec)) for a in scenario.autoscalers]
