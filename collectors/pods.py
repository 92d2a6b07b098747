"""Scraping applications' own metrics from pods annotated for Prometheus.

A running pod with ``prometheus.io/scrape: "true"`` is scraped at
``{prometheus.io/scheme}://{pod IP}:{prometheus.io/port}{prometheus.io/path}`` (defaults
``http``, the first declared container port, ``/metrics``), so that a request rate, a queue
length or any other application metric can drive scaling. The pod is reached directly at its
IP, without a token (the service account's token is for kubelets, never for applications);
``https`` endpoints are checked against the system's trust store.

Samples keep their names and labels and gain the target labels of the community
``kubernetes-pods`` scrape job (Prometheus' Kubernetes service discovery, relabelled):

- ``namespace``, ``pod``, ``node``: the pod's namespace, name and node;
- ``container``: the container that declares the scraped port among its ``ports`` (absent when
  no container declares it);
- ``job``: the pod's ``prometheus.io/job`` annotation, else its ``app.kubernetes.io/name``
  label, else its ``app`` label, else the name of the workload that owns it (a ReplicaSet's
  Deployment, a Job's CronJob), else the pod's name. A Deployment ``api`` whose pods are
  labelled ``app: api`` is ``job="api"``.

A label the application already set under one of those names is kept as ``exported_<name>``,
as Prometheus does without ``honor_labels``. Scrape health (up, errors by reason, durations)
is the :class:`~collectors.scrape.ScrapeHealth` of job ``pod``: an error status from the pod,
a body that does not parse or a refused connection is a failed scrape, and every series the
pod exposed is marked stale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import httpx
import numpy as np

from collectors.cluster_model import PodInfo
from collectors.kubelet import kubelet_keepalive_seconds
from collectors.scrape import ScrapeOutcome, Scraper, ScrapeTarget
from collectors.settings import CollectorSettings
from collectors.transport import ScrapeClient
from runtime.clock import Clock
from tsdb import Store
from tsdb.exposition import ExpositionError, parse_exposition
from tsdb.labels import InvalidLabels, Labels, make_labels

log = logging.getLogger(__name__)

SCRAPE = "prometheus.io/scrape"
PORT = "prometheus.io/port"
PATH = "prometheus.io/path"
SCHEME = "prometheus.io/scheme"
JOB = "prometheus.io/job"
# Pod labels naming the application, in order of preference (the recommended label first).
JOB_LABELS = ("app.kubernetes.io/name", "app")

WorkloadOf = Callable[[PodInfo], tuple[str, str] | None]


def pod_client(settings: CollectorSettings) -> httpx.AsyncClient:
    """The HTTP client for pod scrapes: system trust store, no redirects, aiohttp on the wire."""
    limits = httpx.Limits(max_connections=settings.concurrency)
    # Kept open between cycles, as the kubelets' connections are.
    return ScrapeClient(
        True,
        limits,
        keepalive_s=kubelet_keepalive_seconds(settings),
        timeout_s=settings.scrape_timeout_seconds,
    )


def scrape_port(pod: PodInfo) -> tuple[int, str] | None:
    """The port to scrape and the container declaring it ("" if none does), else None."""
    annotated = pod.annotations.get(PORT)
    if annotated is not None:
        if not annotated.isdigit():
            return None
        port = int(annotated)
        owner = next((c.name for c in pod.containers if port in c.ports), "")
        return port, owner
    for c in pod.containers:
        if c.ports:
            return c.ports[0], c.name
    return None


def pod_target(pod: PodInfo) -> ScrapeTarget | None:
    """The scrape target of an annotated, running pod with an IP, else None."""
    a = pod.annotations
    if a.get(SCRAPE, "").lower() != "true" or pod.phase != "Running" or not pod.pod_ip:
        return None
    found = scrape_port(pod)
    if found is None:
        return None
    scheme = a.get(SCHEME, "http").lower()
    if scheme not in ("http", "https"):
        return None
    path = a.get(PATH) or "/metrics"
    if not path.startswith("/"):
        path = "/" + path
    host = f"[{pod.pod_ip}]" if ":" in pod.pod_ip else pod.pod_ip
    return ScrapeTarget(f"{pod.namespace}/{pod.name}", f"{scheme}://{host}:{found[0]}{path}")


def job_of(pod: PodInfo, workload: tuple[str, str] | None) -> str:
    """The ``job`` label of a pod's samples (see the module's docstring for the order)."""
    named = pod.annotations.get(JOB)
    if named:
        return named
    for label in JOB_LABELS:
        value = pod.labels.get(label)
        if value:
            return value
    if workload is not None:
        return workload[1]
    return pod.name


def pod_labels(pod: PodInfo, workload: tuple[str, str] | None) -> dict[str, str]:
    """The target labels of a pod: job, namespace, pod, node and (when known) container."""
    found = scrape_port(pod)
    container = found[1] if found is not None else ""
    labels = {
        "job": job_of(pod, workload),
        "namespace": pod.namespace,
        "pod": pod.name,
        "node": pod.node,
    }
    if container:
        labels["container"] = container
    return labels


def target_labels(sample_labels: Labels, target: dict[str, str]) -> dict[str, str]:
    """Sample labels plus the target's; clashing application labels move to exported_*."""
    out = dict(sample_labels)
    for name, value in target.items():
        if name in out:
            out[f"exported_{name}"] = out.pop(name)
        out[name] = value
    return out


class PodMetricsCollector:
    """Scrapes every annotated pod each cycle into the store."""

    def __init__(
        self,
        scraper: Scraper,
        store: Store,
        clock: Clock,
        pods: Callable[[], Sequence[PodInfo]],
        max_samples_per_target: int = 50_000,
        workload_of: WorkloadOf | None = None,
    ) -> None:
        self._scraper = scraper
        self._workload_of: WorkloadOf = workload_of or (lambda pod: pod.owner)
        self._store = store
        self._clock = clock
        self._pods = pods
        self._max_samples = max_samples_per_target
        self._written: dict[str, set[Labels]] = {}

    async def collect(self) -> int:
        """Scrape all annotated pods once; returns samples written."""
        by_key: dict[str, dict[str, str]] = {}
        targets = []
        for pod in self._pods():
            target = pod_target(pod)
            if target is not None:
                by_key[target.key] = pod_labels(pod, self._workload_of(pod))
                targets.append(target)
        outcomes = await self._scraper.scrape_all(targets)
        refs: list[int] = []
        stamps: list[int] = []
        values: list[float] = []
        for outcome in outcomes:
            written = self._ingest(outcome, by_key[outcome.target.key], refs, stamps, values)
            self._end(outcome.target.key, written)
        for key in set(self._written) - set(by_key):
            self._end(key, set())
        if refs:
            self._store.append_batch(
                np.array(refs, np.int32), np.array(stamps, np.int64), np.array(values, np.float64)
            )
        return len(refs)

    def _ingest(
        self,
        outcome: ScrapeOutcome,
        target: dict[str, str],
        refs: list[int],
        stamps: list[int],
        values: list[float],
    ) -> set[Labels]:
        if outcome.body is None:
            return set()
        try:
            exposition = parse_exposition(outcome.body, max_samples=self._max_samples)
        except ExpositionError as e:
            self._scraper.fail(outcome, "parse_error", str(e))
            return set()
        self._scraper.succeeded(outcome)
        written: set[Labels] = set()
        for s in exposition.samples:
            labels = target_labels(s.labels, target)
            labels["__name__"] = s.name
            key = make_labels(labels)
            try:
                ref = self._store.ref(key)
            except InvalidLabels:
                self._scraper.health.count_rejected("invalid_labels")
                continue
            refs.append(ref)
            stamps.append(s.timestamp_ms if s.timestamp_ms is not None else outcome.started_ms)
            values.append(s.value)
            written.add(key)
        return written

    def _end(self, key: str, written: set[Labels]) -> None:
        """Staleness markers for series a target stopped exposing (or the target is gone)."""
        now = int(self._clock.now() * 1000)
        for labels in self._written.get(key, set()) - written:
            self._store.mark_stale(labels, now)
        if written:
            self._written[key] = written
        else:
            self._written.pop(key, None)
