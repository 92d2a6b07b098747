"""The collection cycle: every interval, scrape kubelets and pods, then record cluster state.

Kubelet and pod samples are written by their collectors with the kubelet's own timestamps;
workload usage and cluster state (replicas, phases, requests...) are written here at the
cycle's time, with staleness markers for series that disappeared, so that a deleted pod does
not linger for five minutes in queries.

Building those families and recording them (about 1.5 CPU-s at 1,000 nodes) runs in a worker
thread, off the event loop, over a snapshot of the cluster model and of the latest usage:
the watches keep changing the model on the loop meanwhile. ``/metrics`` shows the same
snapshot until the next cycle: its families are built from it in the thread that renders them
(:class:`runtime.families.Deferred`), so a scrape costs the loop nothing, and nothing of them
outlives the scrape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from collectors.cadvisor import Rows
from collectors.cluster import WatchHealth
from collectors.cluster_model import ClusterModel
from collectors.kubelet import SERIES_WRITTEN, KubeletCollector, NodeEndpoint, NodeUsageView
from collectors.kubelet_stats import KubeletStatsCollector
from collectors.pods import PodMetricsCollector
from collectors.scrape import ScrapeHealth
from collectors.state_metrics import (
    cluster_families,
    counters_copy,
    health_families,
    usage_families,
)
from runtime.clock import Clock, in_thread
from runtime.families import Deferred, Family
from runtime.gcpause import paused_gc
from runtime.gil import FreedGradually, drop_gradually
from tsdb import Store, StoreStats
from tsdb.recorder import FamilyRecorder

# Node views freed per slice when a snapshot goes: each holds a dict of its pods and one of
# its containers, a few hundred objects at 30 pods a node.
VIEWS_FREED_PER_SLICE = 16


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
        stats: Sequence[KubeletStatsCollector] = (),
        stats_on_metrics: bool = True,
        shard_labels: Mapping[str, str] | None = None,
        record_cluster: Callable[[], bool] = lambda: True,
    ) -> None:
        """With shards, ``shard_labels`` mark what this replica records of workloads and of
        itself (its partial sums stay apart from other shards'), and ``record_cluster`` says
        whether it records the cluster's state (one replica does)."""
        self._store = store
        self._clock = clock
        self._model = model
        self._kubelets = kubelets
        self._pods = pods
        self._scrape_health = scrape_health
        self._watch_health = watch_health
        self._stats = stats
        self._stats_on_metrics = stats_on_metrics
        self._recorder = FamilyRecorder(store, shard_labels)
        # The store's sizes as the last cycle's recording thread read them: rendering must
        # not take the store's lock (a forked child would wait for a thread it lacks), and
        # the loop must not walk the data directory.
        self._store_stats: StoreStats | None = None
        self._record_cluster = record_cluster
        self._snapshot: tuple[dict[str, NodeUsageView], ClusterModel] | None = None

    def snapshot(self) -> tuple[dict[str, NodeUsageView], ClusterModel] | None:
        """The latest usage and cluster model as the last cycle saw them (None before the
        first): copies no watch or scrape changes, for readers in any thread."""
        return self._snapshot

    def families(self) -> list[Family | Deferred]:
        """What ``/metrics`` shows: the usage, cluster state and kubelet stats of the last
        cycle (built by the renderer from what the loop hands it) and the replica's health
        now."""
        health = self.health()
        if self._snapshot is None:
            return [health]
        stats = [(c, c.latest()) for c in self._stats] if self._stats_on_metrics else []
        return [Deferred(partial(self._exported, *self._snapshot, stats)), health]

    @staticmethod
    def _exported(
        latest: dict[str, NodeUsageView],
        model: ClusterModel,
        stats: list[tuple[KubeletStatsCollector, list[Rows]]],
    ) -> list[Family]:
        kubelet = [f for c, rows in stats for f in c.families(rows)]
        return [*usage_families(latest, model), *cluster_families(model), *kubelet]

    def health(self) -> Deferred:
        """The replica's own health (scrapes, list/watch, the store as of the last cycle):
        every replica exports it. The counters are copied now, the families made where
        they are rendered, off the loop (at 5,000 nodes they are 15,000 samples)."""
        return Deferred(partial(health_families, *self._health_counters(), self._store_stats))

    def _health_counters(self) -> tuple[list[ScrapeHealth], WatchHealth | None]:
        jobs = [counters_copy(h) for h in (*self._scrape_health, *(c.health for c in self._stats))]
        watch = None if self._watch_health is None else counters_copy(self._watch_health)
        return jobs, watch

    async def run_once(self) -> CycleReport:
        """One cycle; returns how many samples it wrote and how long it took."""
        started = time.perf_counter()
        written = await self._kubelets.collect()
        if self._pods is not None:
            written += await self._pods.collect()
        # cAdvisor and the summary API, each when its own interval has passed.
        for collector in self._stats:
            written += await collector.collect_if_due()
        # Stored too, so that rules such as CollectorTargetsDown can read them; taken here, on
        # the loop, because the scrapers and watches that count them run on it.
        health = self._health_counters()
        # The views of the snapshot this one replaces are freed off the loop, by whoever
        # lets go of it last (this cycle, or a /metrics render still building from it).
        latest = FreedGradually(self._kubelets.latest, per_slice=VIEWS_FREED_PER_SLICE)
        self._snapshot = (latest, self._model.snapshot())
        written += await in_thread(
            self._clock,
            self._record,
            *self._snapshot,
            health,
            int(self._clock.now() * 1000),
            self._record_cluster(),
        )
        return CycleReport(written, time.perf_counter() - started)

    def _record(
        self,
        latest: dict[str, NodeUsageView],
        model: ClusterModel,
        health: tuple[list[ScrapeHealth], WatchHealth | None],
        at_ms: int,
        cluster: bool = True,
    ) -> int:
        """Workload usage, cluster state and the replica's health into the store (in a
        worker thread)."""
        self._store_stats = self._store.stats()
        with paused_gc():
            state = cluster_families(model) if cluster else []
            families = [
                f
                for f in (
                    *usage_families(latest, model),
                    *state,
                    *health_families(*health, self._store_stats),
                )
                # The kubelet collector wrote those with the kubelets' own timestamps.
                if f.name not in SERIES_WRITTEN
            ]
            written = self._recorder.record(families, at_ms)
        # Freed here a slice at a time, not all at once as this returns (see drop_gradually).
        for family in families:
            drop_gradually(family.samples)
        return written
