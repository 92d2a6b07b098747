"""Scenario workloads as Kubernetes objects, and the behaviour their pods get."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.app_metrics import scrape_annotations
from simulator.context import WORKLOAD_ANNOTATION
from simulator.kubelet_sim import Behaviour
from simulator.load import load_source
from simulator.objects import KubeObject
from simulator.scenario import Scenario, WorkloadSpec

__all__ = ["behaviours_of", "workload_object"]


def _pod_template(w: WorkloadSpec, labels: dict[str, str]) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if w.requests:
        resources["requests"] = dict(w.requests)
    if w.limits:
        resources["limits"] = dict(w.limits)
    annotations = {WORKLOAD_ANNOTATION: f"{w.namespace}/{w.name}"}
    container: dict[str, Any] = {"name": w.container, "image": w.image, "resources": resources}
    if w.metrics is not None:
        annotations.update(scrape_annotations(w.metrics))
        container["ports"] = [{"name": "http", "containerPort": w.metrics.port, "protocol": "TCP"}]
    if w.resize_policy:
        container["resizePolicy"] = [
            {"resourceName": r, "restartPolicy": p} for r, p in sorted(w.resize_policy.items())
        ]
    return {
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": {
            "containers": [container],
            **({"restartPolicy": "Never"} if w.kind in ("Job", "CronJob") else {}),
        },
    }


def workload_object(w: WorkloadSpec) -> KubeObject:
    """The Deployment, StatefulSet, DaemonSet, Job or CronJob a workload spec describes."""
    labels = {"app.kubernetes.io/name": w.name, "app": w.name, **w.labels}
    template = _pod_template(w, labels)
    api_version = "batch/v1" if w.kind in ("Job", "CronJob") else "apps/v1"
    metadata = {"name": w.name, "namespace": w.namespace, "labels": labels}
    spec: dict[str, Any]
    if w.kind == "CronJob":
        spec = {
            "schedule": w.schedule,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "completions": w.completions,
                    "parallelism": w.parallelism,
                    "backoffLimit": 2,
                    "template": template,
                },
            },
        }
    elif w.kind == "Job":
        spec = {
            "completions": w.completions,
            "parallelism": w.parallelism,
            "backoffLimit": 2,
            "template": template,
        }
    else:
        spec = {"selector": {"matchLabels": {"app": w.name}}, "template": template}
        if w.kind != "DaemonSet":
            spec["replicas"] = w.replicas
        if w.kind == "StatefulSet":
            spec["serviceName"] = w.name
    return {"apiVersion": api_version, "kind": w.kind, "metadata": metadata, "spec": spec}


def behaviours_of(scenario: Scenario, start: float) -> dict[tuple[str, str], Behaviour]:
    """Each workload's load source, memory model and timings."""
    folder: Path | None = scenario.source.parent if scenario.source is not None else None
    out = {}
    for i, w in enumerate(scenario.workloads):
        load = load_source(w.load, folder, start, scenario.seed + i) if w.load else None
        out[(w.namespace, w.name)] = Behaviour(
            load=load,
            memory=w.memory,
            startup=w.startup_seconds,
            job_seconds=w.job_seconds,
            failure_rate=w.failure_rate,
        )
    return out
