"""Which series of foresight's store a workload's back-fill writes, and the PromQL that reads
their equivalent from a Prometheus that scrapes the kubelets' cAdvisor (or resource) metrics.

The controller's load query (:func:`autoscaler.controller.load.load_query`) reads
``foresight_workload_cpu_usage_cores`` or ``foresight_workload_memory_working_set_bytes`` with
the labels ``namespace``, ``workload_kind`` and ``workload``: the usage summed over the
workload's pods. The same numbers in Prometheus, with no kube-state-metrics needed:

* CPU: ``sum(irate(container_cpu_usage_seconds_total{...}[w]))``. ``irate`` is the rate
  between the two newest samples, as foresight turns the kubelet's counter into cores between
  two scrapes; ``w`` (``history.rate_window_seconds``) only has to hold two scrapes.
* memory: ``sum(container_memory_working_set_bytes{...})``.

``{...}`` selects the workload's containers: ``namespace`` equal, ``container`` neither empty
(cAdvisor's pod-level sum) nor ``POD`` (the sandbox), and ``pod`` matching the names the
workload's controller gives its pods: ``<deployment>-<template hash>-<5 characters>`` (both
from Kubernetes' consonant-and-digit alphabet, so ``web`` never takes the pods of
``web-api`` or of a Job ``web-backup``) or ``<statefulset>-<ordinal>``; plus
``history.extra_matchers``. Autoscalers whose load is their own PromQL query get no back-fill:
what their query reads has no known counterpart in Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from autoscaler.controller.load import quote
from autoscaler.resource.model import MetricType, PredictiveAutoscalerSpec
from runtime import names

__all__ = ["BackfillTarget", "pod_pattern", "target_of"]

# k8s.io/apimachinery/pkg/util/rand: the alphabet of pod-template hashes and name suffixes.
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
_CPU = "container_cpu_usage_seconds_total"
_MEMORY = "container_memory_working_set_bytes"

Resource = Literal["cpu", "memory"]


def pod_pattern(kind: str, name: str) -> str:
    """An RE2 pattern (anchored, as PromQL anchors it) for the names of the workload's pods."""
    escaped = name.replace(".", r"\.")
    if kind == "StatefulSet":
        return f"{escaped}-[0-9]+"
    return f"{escaped}-{_SAFE}{{1,10}}-{_SAFE}{{5}}"


@dataclass(frozen=True)
class BackfillTarget:
    """One series of the store that a back-fill fills: a workload's CPU or memory."""

    namespace: str
    kind: str
    workload: str
    resource: Resource

    @property
    def name(self) -> str:
        """The store's metric name (the one the load query reads)."""
        return names.WORKLOAD_CPU_CORES if self.resource == "cpu" else names.WORKLOAD_MEMORY

    def labels(self) -> dict[str, str]:
        """The series' labels in the store, exactly as the collectors write them."""
        return {
            "__name__": self.name,
            "namespace": self.namespace,
            "workload_kind": self.kind,
            "workload": self.workload,
        }

    def query(self, extra_matchers: str = "", rate_window_seconds: float = 120) -> str:
        """The PromQL giving this series' values from cAdvisor's metrics."""
        matchers = [
            f'namespace="{quote(self.namespace)}"',
            f'pod=~"{quote(pod_pattern(self.kind, self.workload))}"',
            'container!=""',
            'container!="POD"',
        ]
        if extra_matchers:
            matchers.append(extra_matchers)
        selector = "{" + ",".join(matchers) + "}"
        if self.resource == "cpu":
            return f"sum(irate({_CPU}{selector}[{rate_window_seconds:g}s]))"
        return f"sum({_MEMORY}{selector})"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.workload} ({self.kind}, {self.resource})"


def target_of(namespace: str, spec: PredictiveAutoscalerSpec) -> BackfillTarget | None:
    """The series the autoscaler's load query reads (CPU when it has no horizontal metric,
    as :func:`~autoscaler.controller.load.load_query`), or None for a custom query."""
    metric = spec.horizontal.metric if spec.horizontal is not None else None
    if metric is not None and metric.type is MetricType.QUERY:
        return None
    resource: Resource = "memory" if metric and metric.type is MetricType.MEMORY else "cpu"
    return BackfillTarget(namespace, spec.target_ref.kind, spec.target_ref.name, resource)
