"""The collection cycle: every interval, scrape kubelets and pods, then record cluster state.

Kubelet and pod samples are written by their collectors with the kubelet's own timestamps;
workload usage and cluster state (replicas, phases, requests...) are written here at the
cycle's time, with staleness markers for series that disappeared, so that a deleted pod does
not linger for five minutes in queries.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from collectors.cluster import WatchHealth
from collectors.cluster_model import ClusterModel
from collectors.kubelet import SERIES_WRITTEN, KubeletCollector, NodeEndpoint
from collectors.pods import PodMetricsCollector
from collectors.scrape import ScrapeHealth
from collectors.state_metrics import cluster_families, health_families, usage_families
from runtime.clock import Clock
from runtime.families import Family
from runtime.gcpause import paused_gc
from tsdb import Store
from tsdb.recorder import FamilyRecorder


def node_endpoints(model: ClusterModel) -> list[NodeEndpoint]:
    """Kubelet endpoints of the nodes the model knows."""
    return [NodeEndpoint(n.name, n.addresses, n.kubelet_port) for n in model.nodes()]


@dataclass
class CycleReport:
    samples: int
    seconds: float


class CollectionCycle:
    """Runs collectors in order and keeps the latest families for ``/metrics``."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        model: ClusterModel,
        kubelets: KubeletCollector,
        pods: PodMetricsCollector | None = None,
        scrape_health: Sequence[ScrapeHealth] = (),
        watch_health: WatchHealth | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._model = model
        self._kubelets = kubelets
        self._pods = pods
        self._scrape_health = scrape_health
        self._watch_health = watch_health
        self._recorder = FamilyRecorder(store)

    def families(self) -> list[Family]:
        """Everything known now: ``/metrics`` calls this at scrape time."""
        return [
            *usage_families(self._kubelets.latest, self._model),
            *cluster_families(self._model),
            *self.health_families(),
        ]

    def health_families(self) -> list[Family]:
        """The replica's own health (scrapes, list/watch, the store): every replica exports it."""
        return health_families(self._scrape_health, self._watch_health, self._store.stats())

    async def run_once(self) -> CycleReport:
        """One cycle; returns how many samples it wrote and how long it took."""
        started = time.perf_counter()
        written = await self._kubelets.collect()
        if self._pods is not None:
            written += await self._pods.collect()
        with paused_gc():
            families = [
                f
                for f in (
                    *usage_families(self._kubelets.latest, self._model),
                    *cluster_families(self._model),
                    # Stored too, so that rules such as CollectorTargetsDown can read them.
                    *self.health_families(),
                )
                # The kubelet collector wrote those with the kubelets' own timestamps.
                if f.name not in SERIES_WRITTEN
            ]
            written += self._recorder.record(families, int(self._clock.now() * 1000))
        return CycleReport(written, time.perf_counter() - started)
