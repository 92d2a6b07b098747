"""The kubelet resource collector: every node's ``/metrics/resource`` into the store.

Each cycle scrapes all nodes (directly or through the API server's node proxy), turns CPU
counters into rates, appends one batch to the store, and keeps the latest values for
``/metrics``. A node whose scrape fails gets staleness markers on its series — it is shown
as missing, never as idle — and a container that disappeared gets them on its own series.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from collectors import names
from collectors.clock import Clock
from collectors.exposition import ExpositionError, parse_exposition
from collectors.scrape import ScrapeOutcome, Scraper, ScrapeTarget
from collectors.settings import CollectorSettings
from collectors.store import Store
from collectors.store.labels import Labels, make_labels
from collectors.store.refs import RefCache
from collectors.usage import CpuPoint, NodeResources, RateTracker, decode_resource_metrics

log = logging.getLogger(__name__)

RESOURCE_PATH = "/metrics/resource"


@dataclass(frozen=True)
class NodeEndpoint:
    """What the cluster model knows of a node's kubelet."""

    name: str
    addresses: tuple[tuple[str, str], ...]  # (type, address), as in Node.status.addresses
    port: int | None = None  # Node.status.daemonEndpoints.kubeletEndpoint.Port


def kubelet_url(node: NodeEndpoint, settings: CollectorSettings, api_server: str | None) -> str:
    """Where to scrape a node: its preferred address, or the API server's node proxy."""
    if settings.kubelet_via_proxy:
        if not api_server:
            raise ValueError("kubelet_via_proxy needs the API server's address")
        return f"{api_server.rstrip('/')}/api/v1/nodes/{quote(node.name)}/proxy{RESOURCE_PATH}"
    by_type = dict(node.addresses)
    for kind in settings.kubelet_address_types:
        address = by_type.get(kind)
        if address:
            host = f"[{address}]" if ":" in address else address
            port = node.port or settings.kubelet_port
            return f"{settings.kubelet_scheme}://{host}:{port}{RESOURCE_PATH}"
    raise ValueError(
        f"node {node.name} has no address of type {', '.join(settings.kubelet_address_types)}"
    )


def read_token(path: Path | None) -> str | None:
    """The bearer token, re-read on every call so that rotated tokens are picked up."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


@dataclass
class NodeUsageView:
    """Latest usage of one node and what runs on it, for ``/metrics``."""

    timestamp_ms: int
    node_cpu_cores: float | None
    node_memory_bytes: float | None
    pods: dict[tuple[str, str], tuple[float | None, float | None]] = field(default_factory=dict)
    containers: dict[tuple[str, str, str], tuple[float | None, float | None]] = field(
        default_factory=dict
    )


class KubeletCollector:
    """One collection cycle at a time over every node the cluster model lists."""

    def __init__(
        self,
        scraper: Scraper,
        store: Store,
        clock: Clock,
        settings: CollectorSettings,
        nodes: Callable[[], Sequence[NodeEndpoint]],
        api_server: str | None = None,
        headers: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self._scraper = scraper
        self._store = store
        self._clock = clock
        self._settings = settings
        self._nodes = nodes
        self._api_server = api_server
        self._headers = headers or self._token_headers
        self._rates = RateTracker(resolution_s=settings.scrape_interval_seconds * 2)
        self._ref = RefCache(store)
        self._written: dict[str, set[Labels]] = {}
        self._rate_keys: dict[str, set[tuple[str, ...]]] = {}
        self.latest: dict[str, NodeUsageView] = {}

    def _token_headers(self) -> dict[str, str]:
        token = read_token(self._settings.token_file)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def targets(self) -> list[ScrapeTarget]:
        """Scrape targets of the current nodes (nodes without an address are logged)."""
        headers = tuple(self._headers().items())
        targets = []
        for node in self._nodes():
            try:
                url = kubelet_url(node, self._settings, self._api_server)
            except ValueError as e:
                log.warning("%s", e, extra={"node": node.name})
                continue
            targets.append(ScrapeTarget(node.name, url, headers))
        return targets

    async def collect(self) -> int:
        """Scrape every node once and store what came back; returns samples written."""
        targets = self.targets()
        outcomes = await self._scraper.scrape_all(targets)
        refs: list[int] = []
        stamps: list[int] = []
        values: list[float] = []
        for outcome in outcomes:
            self._ingest(outcome, refs, stamps, values)
        gone = set(self._written) - {t.key for t in targets}
        for node in gone:
            self._mark_stale(node, set())
            self.latest.pop(node, None)
            self._rates.forget(set(self._rate_keys.pop(node, set())))
        if refs:
            self._store.append_batch(
                np.array(refs, np.int32), np.array(stamps, np.int64), np.array(values, np.float64)
            )
        return len(refs)

    def _ingest(
        self, outcome: ScrapeOutcome, refs: list[int], stamps: list[int], values: list[float]
    ) -> None:
        node = outcome.target.key
        if outcome.body is None:
            self._mark_stale(node, set())
            self.latest.pop(node, None)
            return
        try:
            exposition = parse_exposition(outcome.body)
        except ExpositionError as e:
            self._scraper.fail(outcome, "parse_error", str(e))
            self._mark_stale(node, set())
            self.latest.pop(node, None)
            return
        resources = decode_resource_metrics(exposition, outcome.started_ms)
        for reason, n in resources.rejected.items():
            self._scraper.health.count_rejected(reason, n)
        written = self._samples(node, resources, refs, stamps, values)
        self._mark_stale(node, written)
        self._written[node] = written

    def _samples(
        self,
        node: str,
        res: NodeResources,
        refs: list[int],
        stamps: list[int],
        values: list[float],
    ) -> set[Labels]:
        written: set[Labels] = set()
        rate_keys: set[tuple[str, ...]] = set()
        ref = self._ref

        def rate(key: tuple[str, ...], point: CpuPoint) -> float | None:
            rate_keys.add(key)
            return self._rates.update(key, point)

        def put(name: str, labels: dict[str, str], ts: int, value: float | None) -> None:
            if value is None:
                return
            key = make_labels({"__name__": name, **labels})
            refs.append(ref(key))
            stamps.append(ts)
            values.append(value)
            written.add(key)

        view = NodeUsageView(self._clock_ms(), None, res.node.memory_bytes)
        node_labels = {"node": node}
        if res.node.cpu is not None:
            cpu = res.node.cpu
            view.node_cpu_cores = rate(("node", node), cpu)
            put(names.NODE_CPU_SECONDS, node_labels, cpu.timestamp_ms, cpu.cumulative_seconds)
            put(names.NODE_CPU_CORES, node_labels, cpu.timestamp_ms, view.node_cpu_cores)
        if res.node.memory_timestamp_ms is not None:
            put(names.NODE_MEMORY, node_labels, res.node.memory_timestamp_ms, res.node.memory_bytes)
        for (ns, pod), usage in res.pods.items():
            labels = {"namespace": ns, "pod": pod, "node": node}
            cores = None
            if usage.cpu is not None:
                cores = rate(("pod", ns, pod), usage.cpu)
                put(names.POD_CPU_CORES, labels, usage.cpu.timestamp_ms, cores)
            if usage.memory_timestamp_ms is not None:
                put(names.POD_MEMORY, labels, usage.memory_timestamp_ms, usage.memory_bytes)
            view.pods[(ns, pod)] = (cores, usage.memory_bytes)
        for (ns, pod, container), usage in res.containers.items():
            labels = {"namespace": ns, "pod": pod, "container": container, "node": node}
            cores = None
            if usage.cpu is not None:
                cpu = usage.cpu
                cores = rate(("container", ns, pod, container), cpu)
                put(names.CONTAINER_CPU_SECONDS, labels, cpu.timestamp_ms, cpu.cumulative_seconds)
                put(names.CONTAINER_CPU_CORES, labels, cpu.timestamp_ms, cores)
            if usage.memory_timestamp_ms is not None:
                put(names.CONTAINER_MEMORY, labels, usage.memory_timestamp_ms, usage.memory_bytes)
            view.containers[(ns, pod, container)] = (cores, usage.memory_bytes)
        self.latest[node] = view
        self._rates.forget(set(self._rate_keys.get(node, set()) - rate_keys))
        self._rate_keys[node] = rate_keys
        return written

    def _mark_stale(self, node: str, still_written: set[Labels]) -> None:
        """Staleness markers on the series of ``node`` that this cycle did not write."""
        previous = self._written.get(node, set())
        ended = previous - still_written
        if not ended:
            if not still_written:
                self._written.pop(node, None)
            return
        now = self._clock_ms()
        for labels in ended:
            self._store.mark_stale(self._ref(labels), now)
        if still_written:
            self._written[node] = still_written
        else:
            self._written.pop(node, None)

    def _clock_ms(self) -> int:
        return int(self._clock.now() * 1000)
