"""The kubelet resource collector: every node's ``/metrics/resource`` into the store.

Each cycle scrapes all nodes (directly or through the API server's node proxy), turns CPU
counters into rates, appends one batch to the store, and keeps the latest values for
``/metrics``. A node whose scrape fails gets staleness markers on its series — it is shown
as missing, never as idle — and a container that disappeared gets them on its own series.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import quote

import httpx
import numpy as np

from collectors.scrape import ScrapeOutcome, Scraper, ScrapeTarget
from collectors.settings import CollectorSettings
from collectors.transport import ScrapeClient
from collectors.usage import (
    LabelKeys,
    NodeResources,
    RateTracker,
    ResourceLayout,
    decode_resource,
    decode_resource_metrics,
)
from runtime import names
from runtime.clock import Clock
from runtime.gcpause import freeze_long_lived, paused_gc
from tsdb import Store
from tsdb.exposition import ExpositionError, parse_exposition
from tsdb.labels import Labels, make_labels

log = logging.getLogger(__name__)

RESOURCE_PATH = "/metrics/resource"

# The event loop renews the leader Lease and answers /healthz: a cycle's decoding and
# ingest (seconds at 1,000 nodes on a loaded machine, more when tens of thousands of series
# are new) runs in slices this long, with other tasks let in between (bench/looplag.py).
INGEST_SLICE_SECONDS = 0.01
# What creating a series costs at first, until a slice has measured it (Store.refs).
_CREATION_SECONDS = 20e-6


@dataclass(frozen=True)
class NodeEndpoint:
    """What the cluster model knows of a node's kubelet."""

    name: str
    addresses: tuple[tuple[str, str], ...]  # (type, address), as in Node.status.addresses
    port: int | None = None  # Node.status.daemonEndpoints.kubeletEndpoint.Port


def kubelet_url(
    node: NodeEndpoint,
    settings: CollectorSettings,
    api_server: str | None,
    path: str = RESOURCE_PATH,
) -> str:
    """Where to scrape a node's ``path``: its preferred address, or the API server's node
    proxy."""
    if settings.kubelet_via_proxy:
        if not api_server:
            raise ValueError("kubelet_via_proxy needs the API server's address")
        return f"{api_server.rstrip('/')}/api/v1/nodes/{quote(node.name)}/proxy{path}"
    by_type = dict(node.addresses)
    for kind in settings.kubelet_address_types:
        address = by_type.get(kind)
        if address:
            host = f"[{address}]" if ":" in address else address
            port = node.port or settings.kubelet_port
            return f"{settings.kubelet_scheme}://{host}:{port}{path}"
    raise ValueError(
        f"node {node.name} has no address of type {', '.join(settings.kubelet_address_types)}"
    )


_Target = TypeVar("_Target")
Headers = tuple[tuple[str, str], ...]


class TargetCache(Generic[_Target]):
    """Each node's scrape target as ``make(node, headers)`` built it, kept while the node
    and the headers stay the same: URLs (a node name quoted) and targets built again for
    every node on every cycle of every collector cost a second a cycle at 5,000 nodes.

    ``make`` raises :class:`ValueError` for a node it cannot scrape: logged every cycle,
    and left out.
    """

    def __init__(self, make: Callable[[NodeEndpoint, Headers], _Target]) -> None:
        self._make = make
        self._headers: Headers | None = None
        self._known: dict[NodeEndpoint, _Target] = {}

    def __call__(self, nodes: Iterable[NodeEndpoint], headers: Headers) -> list[_Target]:
        """The targets of ``nodes``, in their order; only those of the nodes are kept."""
        known = {} if headers != self._headers else self._known
        kept: dict[NodeEndpoint, _Target] = {}
        for node in nodes:
            target = known.get(node)
            if target is None:
                try:
                    target = self._make(node, headers)
                except ValueError as e:
                    log.warning("%s", e, extra={"node": node.name})
                    continue
            kept[node] = target
        self._headers, self._known = headers, kept
        return list(kept.values())


class KubeletTlsError(ValueError):
    """The CA setting for kubelet scrapes cannot be used; the message names the setting."""


def kubelet_tls(settings: CollectorSettings) -> ssl.SSLContext | bool:
    """How kubelet certificates (or the API server's, through the node proxy) are checked.

    Against ``ca_file`` only, when it is set: a kubelet whose certificate the cluster CA did
    not sign, or that names another host, fails its scrapes with reason ``tls``. With no CA
    file, the system's trust store; with ``insecure_skip_tls_verify``, not at all.
    """
    if settings.insecure_skip_tls_verify:
        return False
    if settings.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(settings.ca_file))
    except FileNotFoundError:
        raise KubeletTlsError(
            f"collectors.ca_file: {settings.ca_file}: no such file (the cluster CA that "
            "signs kubelet certificates; set insecure_skip_tls_verify only for test clusters)"
        ) from None
    except (ssl.SSLError, OSError) as e:
        raise KubeletTlsError(
            f"collectors.ca_file: {settings.ca_file}: not a PEM CA bundle: {e}"
        ) from e


def kubelet_client(
    settings: CollectorSettings, limits: httpx.Limits | None = None
) -> httpx.AsyncClient:
    """The HTTP client for kubelet scrapes: TLS as :func:`kubelet_tls` says, aiohttp on the
    wire (see :mod:`collectors.transport`), no redirects (a kubelet never redirects, and a
    redirect must not carry the token elsewhere).

    Connections outlive a cycle (:func:`kubelet_keepalive_seconds`), so that a cycle does
    not pay a TCP (and often a TLS) handshake per kubelet on the event loop.
    """
    limits = limits or httpx.Limits(max_connections=settings.concurrency)
    return ScrapeClient(
        kubelet_tls(settings),
        limits,
        keepalive_s=kubelet_keepalive_seconds(settings),
        timeout_s=settings.scrape_timeout_seconds,
    )


def kubelet_keepalive_seconds(settings: CollectorSettings) -> float:
    """How long an idle kubelet connection is kept: past the next cycle, however the stagger
    and a slow scrape shift it (aiohttp's default of 15 s is the scrape interval itself, so
    most connections closed just before they were needed again)."""
    return 2 * settings.scrape_interval_seconds + settings.scrape_timeout_seconds


def read_token(path: Path | None) -> str | None:
    """The bearer token, re-read on every call so that rotated tokens are picked up."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def token_headers(path: Path | None) -> dict[str, str]:
    """The Authorization header of the bearer token in ``path`` (none without a token)."""
    token = read_token(path)
    return {"Authorization": f"Bearer {token}"} if token else {}


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


# Series of one node, pod or container, by the position of their ref in _NodeState.refs.
_NODE_SERIES = (names.NODE_CPU_SECONDS, names.NODE_CPU_CORES, names.NODE_MEMORY)
_POD_SERIES = (names.POD_CPU_CORES, names.POD_MEMORY)
_CONTAINER_SERIES = (
    names.CONTAINER_CPU_SECONDS,
    names.CONTAINER_CPU_CORES,
    names.CONTAINER_MEMORY,
)
_SERIES_OF = {"node": _NODE_SERIES, "pod": _POD_SERIES, "container": _CONTAINER_SERIES}
# foresight's names for what the /stats/summary collector (collectors.kubelet_stats) writes.
SUMMARY_SERIES = frozenset(
    {
        names.POD_EPHEMERAL_STORAGE_USED,
        names.POD_VOLUME_USED,
        names.POD_VOLUME_CAPACITY,
        names.NODE_FS_CAPACITY,
        names.NODE_FS_AVAILABLE,
        names.NODE_FS_USED,
        names.NODE_FS_INODES,
        names.NODE_FS_INODES_FREE,
    }
)
# Every series the kubelet collectors write to the store themselves, with their own times.
SERIES_WRITTEN = frozenset({*_NODE_SERIES, *_POD_SERIES, *_CONTAINER_SERIES, *SUMMARY_SERIES})

# ("node", node) | ("pod", namespace, pod) | ("container", namespace, pod, container): the key
# of a node's, pod's or container's series, and of its CPU rate.
EntityKey = tuple[str, ...]


@dataclass(slots=True)
class _NodeState:
    """What one node's previous scrapes left: series ids, what was written, parsed labels."""

    refs: dict[EntityKey, list[int]] = field(default_factory=dict)
    # Bit i set: series i of the entity got a sample in the last successful scrape.
    written: dict[EntityKey, int] = field(default_factory=dict)
    rate_keys: set[EntityKey] = field(default_factory=set)
    label_keys: LabelKeys = field(default_factory=dict)
    # Where the numbers of its responses lie, while they keep their layout.
    layout: ResourceLayout | None = None


@dataclass(slots=True)
class _NewSeries:
    """Series first met within a slice, created together at its end: one by one, the 150,000
    of a first cycle at 1,000 nodes cost seconds of the event loop's time."""

    labels: list[Labels] = field(default_factory=list)
    # Where each one's id goes: (an entity's slots, the series' index in them, its place
    # in the cycle's batch).
    places: list[tuple[list[int], int, int]] = field(default_factory=list)


class KubeletCollector:
    """One collection cycle at a time over every node the cluster model lists.

    Per-sample work is kept to dictionary lookups: each node keeps the series ids of its
    pods and containers and its parsed label texts from one scrape to the next, so that
    a steady cluster builds no label sets at all (see ``bench/collect.py``).
    """

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
        self._creation_s = _CREATION_SECONDS
        self._state: dict[str, _NodeState] = {}
        self._generation = store.generation
        self._targets = TargetCache(self._target)
        self.latest: dict[str, NodeUsageView] = {}

    def _token_headers(self) -> dict[str, str]:
        return token_headers(self._settings.token_file)

    def targets(self) -> list[ScrapeTarget]:
        """Scrape targets of the current nodes (nodes without an address are logged)."""
        return self._targets(self._nodes(), tuple(self._headers().items()))

    def _target(self, node: NodeEndpoint, headers: Headers) -> ScrapeTarget:
        return ScrapeTarget(node.name, kubelet_url(node, self._settings, self._api_server), headers)

    async def collect(self) -> int:
        """Scrape every node once and store what came back; returns samples written."""
        targets = self.targets()
        outcomes = await self._scraper.scrape_all(targets)
        # Arrays, not lists: a full collection during the cycle would walk every element.
        refs: array[int] = array("i")
        stamps: array[int] = array("q")
        values: array[float] = array("d")
        done = 0
        while done < len(outcomes):
            if done:
                await asyncio.sleep(0)
            done = self._ingest_slice(outcomes, done, refs, stamps, values)
        self._check_generation()
        for node in set(self._state) - {t.key for t in targets}:
            state = self._state.pop(node)
            self._mark_stale(node, state, {})
            self.latest.pop(node, None)
            self._rates.forget(set(state.rate_keys))
        if refs:
            self._store.append_batch(
                np.array(refs, np.int32), np.array(stamps, np.int64), np.array(values, np.float64)
            )
        return len(refs)

    def _check_generation(self) -> None:
        """Forget cached series ids once retention dropped series (their ids may be reused).

        Maintenance runs in its own thread, so this is asked again after every pause."""
        if self._store.generation != self._generation:
            self._generation = self._store.generation
            for state in self._state.values():
                state.refs.clear()

    def _ingest_slice(
        self,
        outcomes: Sequence[ScrapeOutcome],
        start: int,
        refs: array[int],
        stamps: array[int],
        values: array[float],
    ) -> int:
        """Ingest outcomes from ``start`` on for one slice of time; returns where it stopped.

        Everything is ingested exactly as in one go: the slices only let the loop run between
        nodes, and the samples still reach the store in one batch. Series met for the first
        time are created at the end of the slice, together, within its time.
        """
        deadline = time.perf_counter() + INGEST_SLICE_SECONDS
        self._check_generation()
        i = start
        new = _NewSeries()
        with paused_gc():
            while i < len(outcomes):
                self._ingest(outcomes[i], refs, stamps, values, new)
                i += 1
                if time.perf_counter() + len(new.labels) * self._creation_s >= deadline:
                    break
            if new.labels:
                self._create(new, refs)
        # What the slice left (a first cycle: every container's state) is frozen now, a
        # slice at a time: left to the collector, it waits in the young generation while a
        # rule round's pause lasts, and the first collection after it walks all of it at once.
        freeze_long_lived()
        return i

    def _create(self, new: _NewSeries, refs: array[int]) -> None:
        """Create the series of ``new`` and put their ids where they belong."""
        started = time.perf_counter()
        made = self._store.refs(new.labels).tolist()
        for (slots, i, at), ref in zip(new.places, made, strict=True):
            slots[i] = refs[at] = ref
        # The next slices leave room for creating what they meet, at this cost.
        self._creation_s = (time.perf_counter() - started) / len(made)

    def _ingest(
        self,
        outcome: ScrapeOutcome,
        refs: array[int],
        stamps: array[int],
        values: array[float],
        new: _NewSeries,
    ) -> None:
        node = outcome.target.key
        state = self._state.get(node)
        if state is None:
            state = self._state[node] = _NodeState()
        body = outcome.body
        if body is None:
            self._failed(node, state)
            return
        resources, state.layout = decode_resource(
            body, outcome.started_ms, state.label_keys, state.layout
        )
        if resources is None:
            try:
                exposition = parse_exposition(body)
            except ExpositionError as e:
                self._scraper.fail(outcome, "parse_error", str(e))
                self._failed(node, state)
                return
            resources = decode_resource_metrics(exposition, outcome.started_ms)
            for reason, n in resources.rejected.items():
                self._scraper.health.count_rejected(reason, n)
        self._scraper.succeeded(outcome)
        written = self._samples(node, state, resources, refs, stamps, values, new)
        self._mark_stale(node, state, written)
        state.written = written
        if len(state.refs) > len(written):
            for key in [k for k in state.refs if k not in written]:
                del state.refs[key]

    def _failed(self, node: str, state: _NodeState) -> None:
        """A node that did not answer: its series end, its usage is unknown (never zero)."""
        self._mark_stale(node, state, {})
        state.written = {}
        self.latest.pop(node, None)

    def _series_ref(self, node: str, state: _NodeState, key: EntityKey, i: int) -> int:
        slots = state.refs.get(key)
        if slots is None:
            slots = state.refs[key] = [-1] * len(_SERIES_OF[key[0]])
        ref = slots[i]
        if ref < 0:
            ref = slots[i] = self._store.ref(_labels_of(node, key, i))
        return ref

    def _samples(
        self,
        node: str,
        state: _NodeState,
        res: NodeResources,
        refs: array[int],
        stamps: array[int],
        values: array[float],
        new: _NewSeries,
    ) -> dict[EntityKey, int]:
        written: dict[EntityKey, int] = {}
        rate_keys: set[EntityKey] = set()
        update = self._rates.update
        cached = state.refs
        add_ref, add_stamp, add_value = refs.append, stamps.append, values.append
        add_new, add_place = new.labels.append, new.places.append

        def series_ref(key: EntityKey, i: int) -> int:
            """The id of series ``i`` of ``key``; -1 for one to create (queued in ``new``,
            at the place in the batch of the sample about to be added)."""
            slots = cached.get(key)
            if slots is None:
                slots = cached[key] = [-1] * len(_SERIES_OF[key[0]])
            ref = slots[i]
            if ref < 0:
                add_new(_labels_of(node, key, i))
                add_place((slots, i, len(refs)))
            return ref

        view = NodeUsageView(self._clock_ms(), None, res.node.memory_bytes)
        key: EntityKey = ("node", node)
        bits = 0
        node_cpu = res.node.cpu
        if node_cpu is not None:
            cpu = node_cpu
            rate_keys.add(key)
            cores = view.node_cpu_cores = update(key, cpu)
            add_ref(series_ref(key, 0))
            add_stamp(cpu[1])
            add_value(cpu[0])
            bits |= 1
            if cores is not None:
                add_ref(series_ref(key, 1))
                add_stamp(cpu[1])
                add_value(cores)
                bits |= 2
        if res.node.memory_timestamp_ms is not None and res.node.memory_bytes is not None:
            add_ref(series_ref(key, 2))
            add_stamp(res.node.memory_timestamp_ms)
            add_value(res.node.memory_bytes)
            bits |= 4
        if bits:
            written[key] = bits

        view_pods = view.pods
        for (ns, pod), usage in res.pods.items():
            key = ("pod", ns, pod)
            slots = cached.get(key)
            bits = 0
            cores = None
            pod_cpu = usage.cpu
            if pod_cpu is not None:
                rate_keys.add(key)
                cores = update(key, pod_cpu)
                if cores is not None:
                    ref = slots[0] if slots is not None else -1
                    add_ref(ref if ref >= 0 else series_ref(key, 0))
                    add_stamp(pod_cpu[1])
                    add_value(cores)
                    bits = 1
            memory = usage.memory_bytes
            if usage.memory_timestamp_ms is not None and memory is not None:
                ref = slots[1] if slots is not None else -1
                add_ref(ref if ref >= 0 else series_ref(key, 1))
                add_stamp(usage.memory_timestamp_ms)
                add_value(memory)
                bits |= 2
            if bits:
                written[key] = bits
            view_pods[(ns, pod)] = (cores, memory)

        view_containers = view.containers
        for (ns, pod, container), usage in res.containers.items():
            key = ("container", ns, pod, container)
            slots = cached.get(key)
            bits = 0
            cores = None
            container_cpu = usage.cpu
            if container_cpu is not None:
                cpu = container_cpu
                rate_keys.add(key)
                cores = update(key, cpu)
                ref = slots[0] if slots is not None else -1
                add_ref(ref if ref >= 0 else series_ref(key, 0))
                add_stamp(cpu[1])
                add_value(cpu[0])
                bits = 1
                if cores is not None:
                    ref = slots[1] if slots is not None else -1
                    add_ref(ref if ref >= 0 else series_ref(key, 1))
                    add_stamp(cpu[1])
                    add_value(cores)
                    bits |= 2
            memory = usage.memory_bytes
            if usage.memory_timestamp_ms is not None and memory is not None:
                ref = slots[2] if slots is not None else -1
                add_ref(ref if ref >= 0 else series_ref(key, 2))
                add_stamp(usage.memory_timestamp_ms)
                add_value(memory)
                bits |= 4
            if bits:
                written[key] = bits
            view_containers[(ns, pod, container)] = (cores, memory)

        self.latest[node] = view
        gone = state.rate_keys - rate_keys
        if gone:
            self._rates.forget(set(gone))
        state.rate_keys = rate_keys
        return written

    def _mark_stale(self, node: str, state: _NodeState, written: dict[EntityKey, int]) -> None:
        """Staleness markers on the series of ``node`` that this cycle did not write."""
        now = -1
        for key, bits in state.written.items():
            ended = bits & ~written.get(key, 0)
            if not ended:
                continue
            if now < 0:
                now = self._clock_ms()
            for i in range(len(_SERIES_OF[key[0]])):
                if ended >> i & 1:
                    self._store.mark_stale(self._series_ref(node, state, key, i), now)

    def _clock_ms(self) -> int:
        return int(self._clock.now() * 1000)


def _labels_of(node: str, key: EntityKey, i: int) -> Labels:
    """The label set of series ``i`` of an entity, as the store knows it."""
    kind = key[0]
    labels = {"__name__": _SERIES_OF[kind][i], "node": node}
    # Interned, as the store's index keeps them: a namespace or a container's name recurs
    # in thousands of series, parsed anew from each node's response.
    if kind != "node":
        labels["namespace"], labels["pod"] = sys.intern(key[1]), key[2]
    if kind == "container":
        labels["container"] = sys.intern(key[3])
    return make_labels(labels)
