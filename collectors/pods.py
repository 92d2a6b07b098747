"""Scraping applications' own metrics from pods annotated for Prometheus.

A running pod with ``prometheus.io/scrape: "true"`` is scraped at
``{prometheus.io/scheme}://{pod IP}:{prometheus.io/port}{prometheus.io/path}`` (defaults
``http``, the first container port, ``/metrics``), so that a request rate, a queue length or
any other application metric can drive scaling. Samples keep their names and labels and gain
``namespace``, ``pod`` and ``node``; a label the application already set under one of those
names is kept as ``exported_<name>``, as Prometheus does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from collectors.cluster_model import PodInfo
from collectors.exposition import ExpositionError, parse_exposition
from collectors.scrape import ScrapeOutcome, Scraper, ScrapeTarget
from runtime.clock import Clock
from tsdb import Store
from tsdb.labels import InvalidLabels, Labels, make_labels

log = logging.getLogger(__name__)

SCRAPE = "prometheus.io/scrape"
PORT = "prometheus.io/port"
PATH = "prometheus.io/path"
SCHEME = "prometheus.io/scheme"
_TARGET_LABELS = ("namespace", "pod", "node")


def pod_target(pod: PodInfo) -> ScrapeTarget | None:
    """The scrape target of an annotated, running pod with an IP, else None."""
    a = pod.annotations
    if a.get(SCRAPE, "").lower() != "true" or pod.phase != "Running" or not pod.pod_ip:
        return None
    port = a.get(PORT)
    if not port or not port.isdigit():
        return None
    scheme = a.get(SCHEME, "http").lower()
    if scheme not in ("http", "https"):
        return None
    path = a.get(PATH, "/metrics")
    if not path.startswith("/"):
        path = "/" + path
    host = f"[{pod.pod_ip}]" if ":" in pod.pod_ip else pod.pod_ip
    return ScrapeTarget(f"{pod.namespace}/{pod.name}", f"{scheme}://{host}:{port}{path}")


def target_labels(sample_labels: Labels, pod: PodInfo) -> dict[str, str]:
    """Sample labels plus the pod's; clashing application labels move to exported_*."""
    out = dict(sample_labels)
    for name, value in (("namespace", pod.namespace), ("pod", pod.name), ("node", pod.node)):
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
    ) -> None:
        self._scraper = scraper
        self._store = store
        self._clock = clock
        self._pods = pods
        self._max_samples = max_samples_per_target
        self._written: dict[str, set[Labels]] = {}

    async def collect(self) -> int:
        """Scrape all annotated pods once; returns samples written."""
        by_key: dict[str, PodInfo] = {}
        targets = []
        for pod in self._pods():
            target = pod_target(pod)
            if target is not None:
                by_key[target.key] = pod
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
        pod: PodInfo,
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
        written: set[Labels] = set()
        for s in exposition.samples:
            labels = target_labels(s.labels, pod)
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
