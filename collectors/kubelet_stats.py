"""Collectors of the kubelets' ``/metrics/cadvisor`` and ``/stats/summary``, each on its own
interval, into the store (and, by setting, onto ``/metrics``).

They reach kubelets as the resource collector does (directly, or through the API server's
node proxy, with the same client, token and TLS) and run within the collection cycle when
their interval has passed (:meth:`KubeletStatsCollector.collect_if_due`). A kubelet's
response is reduced to its kept samples as soon as it arrives, so that a cycle never holds
thousands of full responses. Most reads take a few milliseconds, on the event loop; a read
that takes tens of milliseconds (a node's first cAdvisor response, or one whose rows changed,
read line by line) runs in a worker thread, so that the loop is never held that long, with
at most ``concurrency`` responses held at once, read or waiting to be read. Samples are
written at the scrape's time (as kube-prometheus scrapes cAdvisor, ``honorTimestamps:
false``). A kubelet that fails, or whose response is malformed (a scrape failure with reason
``parse_error``), gets staleness markers on its series, and so does every series that a
later response no longer has.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from collectors.cadvisor import (
    RowCache,
    RowLabels,
    Rows,
    Selection,
    TargetLabels,
    read_by_position,
    read_cadvisor,
)
from collectors.kubelet import Headers, NodeEndpoint, TargetCache, kubelet_url, token_headers
from collectors.scrape import ScrapeHealth, ScrapeOutcome, Scraper, ScrapeTarget
from collectors.settings import CollectorSettings
from collectors.summary import RowKey, SummaryError, decode_summary, row_labels, summary_columns
from runtime import names_kubelet
from runtime.clock import Clock, in_thread
from runtime.families import Family, Kind
from runtime.gcpause import call_paused, freeze_long_lived
from tsdb import SeriesLimitExceeded, Store, UnknownSeries
from tsdb.exposition import ExpositionError
from tsdb.labels import Labels

__all__ = [
    "CadvisorCollector",
    "KubeletStatsCollector",
    "SummaryCollector",
    "kubelet_stats_collectors",
]

log = logging.getLogger(__name__)

# Reads of one collector in worker threads at once: they hold the interpreter lock nearly all
# the time, so more would not finish sooner, and would keep the threads that the rest of the
# service hands work to (rule rounds, queries) busy.
_THREAD_READS = 2


@dataclass(slots=True)
class _NodeStats:
    """What one node's previous scrapes left."""

    # cAdvisor: the series of each line of the last response.
    rows: RowCache = field(default_factory=RowCache)
    # Summary API: the series id of each row of the last response; and its keys and ids in
    # order, when each row had its own series (none repeated, none past the series limit).
    summary_refs: dict[RowKey, int] = field(default_factory=dict)
    summary_keys: list[RowKey] | None = None
    summary_ids: list[int] = field(default_factory=list)
    # Series written by the last successful scrape and their values, replaced as one
    # (``/metrics`` reads them from another thread).
    latest: Rows = ([], [])
    # Rows past the store's series limit met by a read in a worker thread, counted by the
    # loop once the read is done.
    rejected: int = 0


class KubeletStatsCollector(abc.ABC):
    """Scrapes one kubelet path of every node; subclasses turn a response into samples."""

    path = ""

    def __init__(
        self,
        scraper: Scraper,
        store: Store,
        clock: Clock,
        settings: CollectorSettings,
        nodes: Callable[[], Sequence[NodeEndpoint]],
        interval_seconds: float,
        api_server: str | None = None,
        headers: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self._scraper = scraper
        self._store = store
        self._clock = clock
        self._settings = settings
        self._nodes = nodes
        self._interval = interval_seconds
        self._api_server = api_server
        self._headers = headers or self._token_headers
        self._state: dict[str, _NodeStats] = {}
        self._generation = store.generation
        self._targets = TargetCache(self._target)
        self._last_run: float | None = None
        self._selection = Selection.of(
            settings.cadvisor_metrics,
            settings.cadvisor_drop_labels,
            settings.cadvisor_drop_interfaces,
        )
        # Responses held at once, from their fetch to the end of their read: a read waiting
        # for a thread holds its response (megabytes of cAdvisor text) meanwhile.
        self._held = asyncio.Semaphore(settings.concurrency)
        self._threads = asyncio.Semaphore(_THREAD_READS)

    @property
    def health(self) -> ScrapeHealth:
        """The scrape counters of this job, for ``/metrics``."""
        return self._scraper.health

    def _token_headers(self) -> dict[str, str]:
        return token_headers(self._settings.token_file)

    def due(self, now: float) -> bool:
        """Whether the interval has passed: within half a collection cycle, so that an
        interval of two cycles means every second cycle whatever the jitter."""
        slack = self._settings.scrape_interval_seconds / 2
        return self._last_run is None or now - self._last_run >= self._interval - slack

    async def collect_if_due(self) -> int:
        """:meth:`collect` when the interval has passed; returns samples written (0 if not)."""
        now = self._clock.now()
        if not self.due(now):
            return 0
        self._last_run = now
        return await self.collect()

    def targets(self) -> list[tuple[ScrapeTarget, TargetLabels]]:
        """Scrape targets of the current nodes, with the labels their samples get."""
        return self._targets(self._nodes(), tuple(self._headers().items()))

    def _target(self, node: NodeEndpoint, headers: Headers) -> tuple[ScrapeTarget, TargetLabels]:
        url = kubelet_url(node, self._settings, self._api_server, self.path)
        # kube-prometheus' instance is the kubelet's address; through the proxy, the node.
        instance = node.name if self._settings.kubelet_via_proxy else urlsplit(url).netloc
        return ScrapeTarget(node.name, url, headers), TargetLabels(node.name, instance, self.path)

    async def collect(self) -> int:
        """Scrape every node once and store what came back; returns samples written."""
        targets = self.targets()
        if self._store.generation != self._generation:
            # Retention forgot series: cached ids may have been reused.
            self._generation = self._store.generation
            for state in self._state.values():
                state.rows = RowCache()
                state.summary_refs = {}
                state.summary_keys = None
        started = time.perf_counter()
        n = len(targets)
        stagger = self._settings.stagger_seconds
        await asyncio.gather(
            *(
                self._scrape(target, labels, i * stagger / n if n else 0.0)
                for i, (target, labels) in enumerate(targets)
            )
        )
        self._scraper.health.cycle_duration_s = time.perf_counter() - started
        live = {t.key for t, _ in targets}
        self._scraper.forget_others(live)
        now_ms = self._clock_ms()
        for node in set(self._state) - live:
            self._end(self._state.pop(node).latest[0], now_ms)
        rows = [state.latest for state in self._state.values() if state.latest[0]]
        if not rows:
            return 0
        refs = np.concatenate([np.asarray(r, np.int64) for r, _ in rows]).astype(np.int32)
        values = np.concatenate([np.asarray(v, np.float64) for _, v in rows])
        self._store.append_batch(refs, now_ms, values)
        return len(refs)

    async def _scrape(self, target: ScrapeTarget, labels: TargetLabels, delay: float) -> None:
        if delay:
            await self._clock.sleep(delay)
        async with self._held:
            await self._scrape_held(target, labels)

    async def _scrape_held(self, target: ScrapeTarget, labels: TargetLabels) -> None:
        outcome = await self._scraper.scrape(target, decode=False)
        state = self._state.get(target.key)
        if state is None:
            state = self._state[target.key] = _NodeStats()
        body = outcome.data
        outcome.data = None  # the full response is not kept past this point
        if body is None:
            self._failed(state)
            return
        try:
            read = self._read_on_loop(body, state, labels)
            if read is None:
                async with self._threads:
                    read = await in_thread(self._clock, self._decode_apart, body, state, labels)
                # What the read left for good (its series, the node's row cache) is frozen
                # now, as the resource collector freezes what each slice left: left to the
                # collector, a first cycle's millions of objects are walked by every full
                # collection that the next job's allocations set off (20 in the summary's
                # first cycle at 1,000 nodes: 17 s on a loaded machine, 0.8 s once frozen).
                freeze_long_lived()
            refs, values = read
        except (ExpositionError, SummaryError) as e:
            self._scraper.fail(outcome, "parse_error", str(e)[:200])
            self._failed(state)
            return
        finally:
            if state.rejected:
                self._scraper.health.count_rejected("series_limit", state.rejected)
                state.rejected = 0
        self._succeeded(outcome)
        # The rows of the last response again (read by position): none is twice, none gone.
        if refs is not state.latest[0]:
            if len(set(refs)) != len(refs):
                rows = len(refs)
                refs, values = _first_of_each(refs, values)
                self._scraper.health.count_rejected("duplicate", rows - len(refs))
            gone = set(state.latest[0]).difference(refs)
            if gone:
                self._end(gone, self._clock_ms())
        state.latest = (refs, values)

    def _succeeded(self, outcome: ScrapeOutcome) -> None:
        self._scraper.succeeded(outcome)

    def _failed(self, state: _NodeStats) -> None:
        """A node that did not answer: its series end (shown as missing, never as zero)."""
        self._end(state.latest[0], self._clock_ms())
        state.latest = ([], [])

    def _end(self, refs: Iterable[int], at_ms: int) -> None:
        for ref in refs:
            self._store.mark_stale(ref, at_ms)

    def _read_on_loop(self, body: bytes, state: _NodeStats, target: TargetLabels) -> Rows | None:
        """The rows of a response when they take a few milliseconds to read; None sends the
        response to :meth:`_decode` in a worker thread."""
        return self._decode(body, state, target)

    def _decode_apart(self, body: bytes, state: _NodeStats, target: TargetLabels) -> Rows:
        """:meth:`_decode` in a worker thread: with full collections held off, which would
        walk every object of the service with the loop's thread stopped too."""
        return call_paused(self._decode, body, state, target)

    @abc.abstractmethod
    def _decode(self, body: bytes, state: _NodeStats, target: TargetLabels) -> Rows:
        """The series ids and values of one response (cAdvisor text, or a summary), as the
        UTF-8 bytes it came in; on the event loop, or in a worker thread (then it touches
        nothing but ``state`` and the store)."""

    def _series(self, labels: Labels, state: _NodeStats) -> int:
        """The series id of ``labels``; -1 past the store's series limit (counted in
        ``state.rejected``)."""
        try:
            return self._store.ref(labels)
        except SeriesLimitExceeded:
            state.rejected += 1
            return -1

    def _series_of(self, label_sets: Sequence[Labels | None], state: _NodeStats) -> list[int]:
        """The series ids of ``label_sets`` (None, and any past the store's series limit: -1,
        counted in ``state.rejected``), those not known yet created together."""
        wanted = [labels for labels in label_sets if labels is not None]
        if not wanted:
            return [-1] * len(label_sets)
        try:
            found = iter(self._store.refs(wanted).tolist())
        except SeriesLimitExceeded:
            # Those within the limit were created: one by one, each past it counted.
            found = iter([self._series(labels, state) for labels in wanted])
        return [-1 if labels is None else next(found) for labels in label_sets]

    def latest(self) -> list[Rows]:
        """Each node's last rows (series ids, values): lists that later scrapes replace,
        never change, so :meth:`families` may read them in another thread."""
        return [state.latest for state in self._state.values()]

    def families(self, latest: list[Rows] | None = None) -> list[Family]:
        """The latest value of every series (of ``latest``, by default now), for ``/metrics``."""
        out: dict[str, Family] = {}
        for refs, values in self.latest() if latest is None else latest:
            for ref, value in zip(refs, values, strict=True):
                try:
                    found = dict(self._store.labels(ref))
                except UnknownSeries:
                    continue  # forgotten by retention since
                name = found.pop("__name__")
                family = out.get(name)
                if family is None:
                    kind: Kind = "counter" if name.endswith("_total") else "gauge"
                    family = out[name] = Family(name, kind, _HELP.get(name, name))
                family.samples.append((found, value))
        return list(out.values())

    def _clock_ms(self) -> int:
        return int(self._clock.now() * 1000)


_HELP = {
    names_kubelet.CFS_THROTTLED_SECONDS: "Time the container was throttled (cAdvisor).",
    names_kubelet.CFS_THROTTLED_PERIODS: "CFS periods the container was throttled in.",
    names_kubelet.CFS_PERIODS: "CFS enforcement periods elapsed.",
}


def _first_of_each(refs: Sequence[int], values: Sequence[float]) -> tuple[list[int], list[float]]:
    """One sample per series: two rows that differ only by dropped labels (a container and
    its replacement while both are listed) keep the first."""
    seen: set[int] = set()
    out_refs: list[int] = []
    out_values: list[float] = []
    for ref, value in zip(refs, values, strict=True):
        if ref not in seen:
            seen.add(ref)
            out_refs.append(ref)
            out_values.append(value)
    return out_refs, out_values


class CadvisorCollector(KubeletStatsCollector):
    """``/metrics/cadvisor``: the families of ``cadvisor_metrics``, labelled for the mixins."""

    path = names_kubelet.CADVISOR_PATH

    def _read_on_loop(self, body: bytes, state: _NodeStats, target: TargetLabels) -> Rows | None:
        return read_by_position(body, state.rows)

    def _decode(self, body: bytes, state: _NodeStats, target: TargetLabels) -> Rows:
        row_labels = RowLabels(self._selection, target)

        def resolve(rows: Sequence[tuple[str, Labels]]) -> list[int]:
            return self._series_of([row_labels(name, labels) for name, labels in rows], state)

        return read_cadvisor(body, self._selection.metrics, state.rows, resolve)


class SummaryCollector(KubeletStatsCollector):
    """``/stats/summary``: ephemeral storage, volumes and node filesystems."""

    path = names_kubelet.SUMMARY_PATH

    def _decode(self, body: bytes, state: _NodeStats, target: TargetLabels) -> Rows:
        keys, found = summary_columns(decode_summary(body))
        # A node's rows are the same from one response to the next: then the ids are last
        # time's list itself (so the rows are not checked again for repeats and gone series).
        if keys == state.summary_keys:
            return state.summary_ids, found
        rows = dict(zip(keys, found, strict=True))
        # Label sets are built and looked up only for new rows, and the keys kept are the
        # first ones seen (new keys kept every time would all outlive a cycle, and set off
        # full collections).
        known = state.summary_refs
        new = [key for key in rows if key not in known]
        made = self._series_of([row_labels(key, target) for key in new], state) if new else []
        created = dict(zip(new, made, strict=True))
        refs: list[int] = []
        values: list[float] = []
        seen: dict[RowKey, int] = {}
        for key, value in rows.items():
            ref = known.get(key)
            if ref is None:
                ref = created[key]
                if ref < 0:
                    continue  # past the series limit: asked again next time, and counted
            seen[key] = ref
            refs.append(ref)
            values.append(value)
        state.summary_refs = seen
        whole = len(refs) == len(keys)
        state.summary_keys, state.summary_ids = (keys, refs) if whole else (None, [])
        return refs, values


def kubelet_stats_collectors(
    scraper: Callable[[str], Scraper],
    store: Store,
    clock: Clock,
    settings: CollectorSettings,
    nodes: Callable[[], Sequence[NodeEndpoint]],
    api_server: str | None = None,
    headers: Callable[[], dict[str, str]] | None = None,
) -> list[KubeletStatsCollector]:
    """The collectors the settings turn on; ``scraper(job)`` gives each its own scraper (and
    so its own health counters and backoff), jobs ``cadvisor`` and ``summary``."""
    out: list[KubeletStatsCollector] = []
    if settings.cadvisor:
        out.append(
            CadvisorCollector(
                scraper("cadvisor"),
                store,
                clock,
                settings,
                nodes,
                settings.cadvisor_interval_seconds,
                api_server,
                headers,
            )
        )
    if settings.summary:
        out.append(
            SummaryCollector(
                scraper("summary"),
                store,
                clock,
                settings,
                nodes,
                settings.summary_interval_seconds,
                api_server,
                headers,
            )
        )
    return out
