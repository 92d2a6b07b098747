"""The service ``foresight run`` starts: collectors, store, controller, leader election and
two HTTP servers: ``/metrics``, ``/healthz`` and ``/readyz`` on ``server.port``, the API
(silences, rules, alerts, and what ``api_routes`` adds) on ``server.api_port``, every API
request behind the guard of ``server.auth``. Two ports, so that a NetworkPolicy can let
Prometheus scrape without letting it reach the API.

:class:`Service` builds the parts from the settings and exposes one step of each loop
(``collect_once``, ``control_once``) so the demo can drive them on its own schedule; ``run``
drives them with timers on the clock until stopped, then shuts down in order: stop acting,
release the Lease, flush the store.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import httpx
import yaml
from aiohttp import web
from kubernetes import client as k8s
from prometheus_client import CollectorRegistry

from access import (
    AccessUnavailable,
    ApiRoute,
    CacheTtl,
    Guard,
    Permission,
    ServingTls,
    api_app,
    build_guard,
    guarded,
    protect,
)
from access.kube import SubjectAccessReviewer, TokenReviewer, missing_review_rights
from alerts.service import AlertingService
from autoscaler.backfill.client import history_client
from autoscaler.backfill.gate import BackfillGate
from autoscaler.controller.controller import Controller
from autoscaler.controller.kube_actions import KubeActions
from autoscaler.cost.exporter import cost_families
from autoscaler.cost.inputs import snapshot_from_cluster
from autoscaler.forecast.query import ModelForecaster
from autoscaler.leader import LeaderElector
from autoscaler.metricsapi import ExternalMetricsApi, external_metrics_api
from autoscaler.metricsapi.cluster_auth import trust_cluster_front_proxy
from autoscaler.settings import Settings
from autoscaler.sharding.membership import ShardMembership
from collectors.cluster import ClusterWatcher
from collectors.cluster_model import PodInfo
from collectors.cycle import CollectionCycle, node_endpoints
from collectors.kube import api_backoff, api_client
from collectors.kubelet import KubeletCollector, NodeEndpoint, kubelet_client, read_token
from collectors.kubelet_stats import kubelet_stats_collectors
from collectors.pods import PodMetricsCollector, pod_client
from collectors.prometheus_source import PrometheusSource
from collectors.remote_querier import RemoteQuerier
from collectors.scrape import ScrapeHealth, Scraper
from promql import Engine
from promql.buffered import BufferedQuerier
from promql.selection import Querier
from queryapi import QueryApi, registry_metadata
from remotewrite.service import RemoteWrite
from runtime import names
from runtime.backoff import Backoff
from runtime.clock import Clock, in_thread, sleep_or_stop
from runtime.families import (
    CONTENT_TYPE,
    Deferred,
    FamiliesCollector,
    Family,
    exposition_async,
)
from runtime.forked import keep_blas_in_caller
from runtime.gcpause import freeze_long_lived
from runtime.hugepages import collapse_heap_off_loop
from runtime.redact import redact_settings, redact_url
from runtime.supervise import Supervisor
from runtime.transports import free_closed_transports
from tsdb import Store
from tsdb.recorder import FamilyRecorder

__all__ = ["ALERT_API_RESOURCES", "Service", "ServiceFailed", "leader_family", "metrics_app"]

log = logging.getLogger(__name__)

# The resource of foresight.dev each path of the alert API is authorised on.
ALERT_API_RESOURCES = {
    "/api/v1/alerts": "alerts",
    "/api/v1/rules": "rules",
    "/api/v2/silences": "silences",
    "/api/v2/silence/{id}": "silences",
}
METRICS_PERMISSION = Permission("get", path="/metrics")
HTTP_DRAIN_SECONDS = 5.0


def leader_family(identity: str, leader: bool) -> Family:
    """Which replica acts: every replica exports its own identity, 1 on the leader."""
    family = Family(names.LEADER, "gauge", "1 on the replica that acts.")
    family.add(float(leader), identity=identity)
    return family


def metrics_app(
    registry: CollectorRegistry, guard: Guard | None = None, in_child: bool = False
) -> web.Application:
    """An aiohttp app serving ``GET /metrics`` from ``registry``; with ``guard``, only to
    callers that may ``get`` the path ``/metrics``; ``in_child``: rendered in a forked
    child rather than a thread (see :func:`runtime.families.exposition_async`)."""

    async def metrics(_: web.Request) -> web.Response:
        # Rendered off the loop: at 1,000 nodes the text is tens of megabytes.
        body = await exposition_async(registry, in_child=in_child)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get(
        "/metrics", protect(guard, metrics, METRICS_PERMISSION) if guard else metrics
    )
    return app


def review_retry(settings: Settings) -> tuple[Backoff, float]:
    """Retries and timeout of a review: a caller waits for it, so it is retried at most twice,
    on the API client's backoff, and waits at most 10 s."""
    kube = settings.kubernetes
    retry = Backoff(
        kube.retry_initial_seconds, kube.retry_max_seconds, attempts=min(kube.retry_attempts, 2)
    )
    return retry, min(kube.request_timeout_seconds, 10.0)


def kubernetes_reviewers(
    api: k8s.ApiClient, clock: Clock, settings: Settings
) -> tuple[TokenReviewer, SubjectAccessReviewer]:
    """TokenReview and SubjectAccessReview through ``api``."""
    retry, timeout = review_retry(settings)
    return (
        TokenReviewer(api, clock, retry, timeout),
        SubjectAccessReviewer(api, clock, retry, timeout),
    )


class ServiceFailed(Exception):
    """A supervised task of the service died; the service has shut down."""


class Service:
    """Every part of foresight wired together."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        api: k8s.ApiClient | None = None,
        persistent: bool = True,
        api_routes: Sequence[ApiRoute] = (),
    ) -> None:
        """``api_routes`` are served on the API port beside the alert API, behind the same
        guard, each with its own permission."""
        # Before any thread computes: /metrics forks, and a fork while BLAS runs on its
        # own pool would hang the process (see runtime.forked).
        keep_blas_in_caller()
        # Kubelet connections live through heap freezes; closed, they must free themselves.
        free_closed_transports()
        self.settings = settings
        self.clock = clock
        self.api = api if api is not None else api_client(settings.kubernetes)
        # Before the store is opened: a bad token file or certificate fails with nothing held.
        server = settings.server
        self.guard = build_guard(
            server.auth,
            clock,
            CacheTtl(server.auth_cache_seconds, server.auth_deny_cache_seconds),
            server.token_file,
            kubernetes_reviewers(self.api, clock, settings)
            if server.auth == "kubernetes"
            else None,
        )
        self._extra_routes = list(api_routes)
        # HTTPS on the API port: bearer tokens never cross the network in clear.
        self.tls = (
            ServingTls(server.tls_cert_file, server.tls_key_file)
            if server.tls_cert_file is not None and server.tls_key_file is not None
            else None
        )
        # History from Prometheus (autoscaler.backfill); its client before the store, so a bad
        # CA file fails with nothing held.
        self._history_http = (
            history_client(settings.history)
            if settings.history.prometheus_url and not settings.storage.query_url
            else None
        )
        if settings.history.prometheus_url and settings.storage.query_url:
            log.warning(
                "history.prometheus_url is not used with storage.query_url: the controller "
                "reads its history from the query backend, not from the embedded store"
            )
        self.store = Store(settings.store, clock, persistent=persistent)
        # Remote write follows the store's log on disk; an in-memory store has none.
        self.remote_write = RemoteWrite(
            settings.remote_write,
            settings.store.data_dir if persistent else None,
            clock,
            settings.store.fsync,
            # The leader's series and a standby's are the same: only one may send them.
            # Shards send their own, which differ.
            may_send=lambda: self.shards is not None or self.elector.is_leader(),
        )
        self.watcher = ClusterWatcher(self.api, clock, settings.kubernetes)
        self.health = ScrapeHealth("kubelet")
        self.pod_health = ScrapeHealth("pod")
        # forecast() in rules and queries is the controller's forecast.
        # With storage.query_url, queries read a remote Prometheus-compatible store and the
        # embedded one buffers what this process collected (promql.buffered).
        storage = settings.storage
        self.remote_store = (
            RemoteQuerier(storage.chunk_hours * 3600, storage.timeout_seconds * 2)
            if storage.query_url
            else None
        )
        self._collecting_since_ms: int | None = None
        self._storage_http: httpx.AsyncClient | None = None
        querier: Querier = (
            self.store
            if self.remote_store is None
            else BufferedQuerier(self.store, self.remote_store, self._buffered_since)
        )
        self.engine = Engine(querier, settings.promql, ModelForecaster.from_settings(settings))
        self.alerts = AlertingService(
            settings.rules,
            settings.webhook.apply_to(settings.notify),
            self.store,
            clock,
            self.engine,
            evaluate_on_standby=settings.sharding.replicas <= 1,
        )
        # Only the leader notifies (or a leader cut off from the API server, see may_notify):
        # the standby's alert state stays warm for a takeover.
        self.elector = LeaderElector(
            self.api, clock, settings.leader, on_notify_change=self.alerts.set_leader
        )
        # With shards, each replica scrapes and reconciles its share (autoscaler.sharding).
        self.shards = (
            ShardMembership(
                self.api, clock, settings.leader, settings.sharding.group, self.elector.identity
            )
            if settings.sharding.replicas > 1
            else None
        )
        retry = api_backoff(settings.kubernetes)
        # With history.prometheus_url, the controller's actions hold a new autoscaler back
        # while its history is back-filled, and report it on its status.
        self.history: BackfillGate | None = (
            BackfillGate.from_settings(settings, self.api, clock, self.store, self._history_http)
            if self._history_http is not None
            else None
        )
        self.controller = Controller(
            self.history
            or KubeActions(self.api, clock, retry, settings.kubernetes.request_timeout_seconds),
            self.watcher.model,
            self.engine,
            clock,
            settings.controller,
            settings.forecast,
            settings.policy,
            is_leader=self.elector.is_leader,
            assigned=self._assigned,
            may_act=self._may_act,
        )
        # external.metrics.k8s.io for HPAs, on its own TLS port; reviews always go to the
        # API server, whatever server.auth says: it is the API server that calls.
        self.external_metrics: ExternalMetricsApi | None = (
            external_metrics_api(
                settings.external_metrics,
                clock,
                self.controller,
                kubernetes_reviewers(self.api, clock, settings),
                CacheTtl(server.auth_cache_seconds, server.auth_deny_cache_seconds),
            )
            if settings.external_metrics.enabled
            else None
        )
        self.external_metrics_port: int | None = None
        self.registry = CollectorRegistry()
        # Prometheus' query API on the API port; ``status/config`` shows the settings with
        # every credential masked, as ``foresight settings`` does.
        self.query_api = QueryApi(
            self.engine,
            self.store,
            settings.query_api,
            clock,
            config=lambda: yaml.safe_dump(
                redact_settings(settings.model_dump(mode="json")), sort_keys=False
            ),
            metadata=registry_metadata(self.registry),
        )
        # A shard's controller metrics carry its name: counters of an autoscaler that moved
        # between shards are two series, not one with two writers.
        self._recorder = FamilyRecorder(
            self.store, None if self.shards is None else {"shard": self.shards.identity}
        )
        self._http: httpx.AsyncClient | None = None
        self._pod_http: httpx.AsyncClient | None = None
        self.supervisor: Supervisor | None = None
        self.cycle: CollectionCycle | None = None
        self.kubelets: KubeletCollector | None = None
        self._runners: list[web.AppRunner] = []
        # At shutdown, requests in flight get this long before they are cancelled (a
        # /metrics render's child is killed then): the flush and the Lease release that
        # follow must fit in the pod's grace period too.
        self.http_drain_seconds = HTTP_DRAIN_SECONDS
        self._closed = False
        self.port: int | None = None
        self.api_port: int | None = None

    # -- parts ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client for scrapes and start list/watch."""
        self._connect_remote_store()
        c = self.settings.collectors
        self._http = kubelet_client(c)
        scraper = self._scraper(self._http, self.health)
        kubelets = self.kubelets = KubeletCollector(
            scraper,
            self.store,
            self.clock,
            c,
            self._node_endpoints,
            api_server=self.api.configuration.host if c.kubelet_via_proxy else None,
            headers=self._auth_headers,
        )
        self.cycle = CollectionCycle(
            self.store,
            self.clock,
            self.watcher.model,
            kubelets,
            pods=self._pod_collector() if c.scrape_pods else None,
            scrape_health=[self.health, self.pod_health] if c.scrape_pods else [self.health],
            watch_health=self.watcher.health,
            shard_labels=None if self.shards is None else {"shard": self.shards.identity},
            record_cluster=self.elector.is_leader if self.shards is not None else lambda: True,
            # cAdvisor and /stats/summary: the kubelet client, a scraper (and backoff) each.
            stats=kubelet_stats_collectors(
                partial(self._job_scraper, self._http),
                self.store,
                self.clock,
                c,
                self._node_endpoints,
                api_server=self.api.configuration.host if c.kubelet_via_proxy else None,
                headers=self._auth_headers,
            ),
            stats_on_metrics=c.kubelet_stats_on_metrics,
        )
        self.registry.register(FamiliesCollector(self._families))
        # Each replica sends its own store's log, so each exports its queues.
        self.registry.register(FamiliesCollector(self.remote_write.families))
        self.registry.register(self.alerts.prometheus_collector())
        if not self.settings.leader.enabled:
            self.alerts.set_leader(True)
        self.watcher.start()

    def _job_scraper(self, client: httpx.AsyncClient, job: str) -> Scraper:
        return self._scraper(client, ScrapeHealth(job))

    def _scraper(self, client: httpx.AsyncClient, health: ScrapeHealth) -> Scraper:
        """A scraper with the collectors' limits, timeouts and backoff."""
        c = self.settings.collectors
        return Scraper(
            client,
            self.clock,
            health,
            concurrency=c.concurrency,
            timeout_s=c.scrape_timeout_seconds,
            stagger_s=c.stagger_seconds,
            max_bytes=c.max_response_bytes,
            backoff_initial_s=c.backoff_initial_seconds,
            backoff_max_s=c.backoff_max_seconds,
        )

    def _pod_collector(self) -> PodMetricsCollector:
        """Annotated pods' application metrics, scraped with their own client and backoff."""
        self._pod_http = pod_client(self.settings.collectors)
        scraper = self._scraper(self._pod_http, self.pod_health)
        model = self.watcher.model
        return PodMetricsCollector(
            scraper, self.store, self.clock, self._pods, workload_of=model.workload_of
        )

    def _families(self) -> list[Family | Deferred]:
        """What ``/metrics`` shows of the collectors, the controller and the cost model.

        Both replicas collect, but only the leader exports the cluster's state: Prometheus
        scrapes both, and sums over two copies would double every dashboard total.
        """
        assert self.cycle is not None
        leader = self.elector.is_leader()
        identity = leader_family(self.elector.identity, leader)
        # Each replica back-fills its own store.
        history = self.history.families() if self.history is not None else []
        if not leader:
            return [identity, self.cycle.health(), *history]
        return [
            identity,
            *history,
            *self.cycle.families(),
            self.controller.families(),
            *self._cost_families(),
        ]

    def _cost_families(self) -> list[Deferred]:
        """The cost model over the last cycle's snapshot, built by the renderer (about a
        second at 1,000 nodes)."""
        assert self.cycle is not None
        snapshot = self.cycle.snapshot()
        if snapshot is None:
            return []
        latest, model = snapshot
        cost = self.settings.cost
        return [Deferred(lambda: cost_families(snapshot_from_cluster(model, latest, cost), cost))]

    def _auth_headers(self) -> dict[str, str]:
        token = read_token(self.settings.collectors.token_file)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _connect_remote_store(self) -> None:
        """The client of ``storage.query_url``, on the running loop."""
        storage = self.settings.storage
        if self.remote_store is None or storage.query_url is None:
            return
        self._storage_http = httpx.AsyncClient(verify=storage.verify())
        source = PrometheusSource(
            self._storage_http,
            storage.query_url,
            self.clock,
            Backoff(0.5, 10.0, jitter=0.2, attempts=3),
            headers=storage.request_headers,
            timeout_s=storage.timeout_seconds,
        )
        url = redact_url(storage.query_url)
        self.remote_store.bind(source, asyncio.get_running_loop(), url)
        log.info("queries read %s; the embedded store buffers recent samples", url)

    def _node_endpoints(self) -> list[NodeEndpoint]:
        """The kubelets this replica scrapes: all, or its shard's."""
        nodes = node_endpoints(self.watcher.model)
        if self.shards is None:
            return nodes
        now, view = self.clock.now(), self.shards.view
        return [n for n in nodes if view.owns(f"node/{n.name}", now)]

    def _pods(self) -> list[PodInfo]:
        """The pods whose metrics this replica scrapes: all, or those on its shard's nodes."""
        pods = self.watcher.model.pods()
        if self.shards is None:
            return pods
        now, view = self.clock.now(), self.shards.view
        return [p for p in pods if p.node and view.owns(f"node/{p.node}", now)]

    def _assigned(self, namespace: str, name: str) -> bool:
        """Whether this replica reconciles an autoscaler (keeps its history and forecast)."""
        if self.history is not None and not self.history.admits(namespace, name):
            return False  # its history is on its way (autoscaler.backfill)
        if self.shards is None:
            return True
        return self.shards.view.owner(f"autoscaler/{namespace}/{name}") == self.shards.identity

    def _may_act(self, namespace: str, name: str) -> bool:
        """Whether this replica may act on an autoscaler now (see ShardView.owns)."""
        if self.shards is None:
            return self.elector.is_leader()
        return self.shards.view.owns(f"autoscaler/{namespace}/{name}", self.clock.now())

    def _buffered_since(self) -> int | None:
        """From when (ms) the embedded store holds all that was collected: the first
        collection of this process, within the raw retention; None before it, and with
        shards, whose store holds only their own share."""
        if self._collecting_since_ms is None or self.shards is not None:
            return None
        keep_ms = round(self.settings.store.raw_retention_hours * 3_600_000)
        return max(self._collecting_since_ms, round(self.clock.now() * 1000) - keep_ms)

    async def wait_synced(self) -> None:
        """Until every watched kind has been listed once."""
        await self.watcher.wait_synced()

    async def collect_once(self) -> int:
        """One collection cycle; returns the samples written."""
        assert self.cycle is not None, "start() first"
        started_ms = round(self.clock.now() * 1000)
        report = await self.cycle.run_once()
        if self._collecting_since_ms is None:
            self._collecting_since_ms = started_ms
        return report.samples

    async def control_once(self) -> None:
        """One reconcile of every autoscaler, and its metrics into the store."""
        await self.controller.reconcile_all()
        families = self.controller.families()
        at_ms = round(self.clock.now() * 1000)
        await in_thread(self.clock, lambda: self._recorder.record(families.build(), at_ms))

    # -- HTTP ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The metrics port: ``/metrics`` (guarded when ``server.protect_metrics``),
        ``/healthz`` (the loop is alive) and ``/readyz`` (caches synced, every rule file
        loaded, no task died); never the API."""
        server = self.settings.server
        app = metrics_app(
            self.registry,
            self.guard if server.protect_metrics else None,
            in_child=server.render_metrics_in_child,
        )

        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok\n")

        async def readyz(_: web.Request) -> web.Response:
            failure = self.supervisor.failure if self.supervisor is not None else None
            if failure is not None:
                return web.Response(status=503, text=f"{failure}\n")
            if not self.watcher.synced:
                return web.Response(status=503, text="caches not synced\n")
            # Degraded, not dead: the other rule files run; /healthz stays 200 (no restart).
            degraded = self.alerts.degraded()
            if degraded is not None:
                return web.Response(status=503, text=f"{degraded}\n")
            return web.Response(text="ok\n")

        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        return app

    def add_api_routes(self, routes: Sequence[ApiRoute]) -> None:
        """Serve ``routes`` on the API port too, behind the guard, each with its permission;
        before :meth:`serve_http`. For a part built on the service's engine and store::

            query = QueryApi(service.engine, service.store, ...)
            service.add_api_routes(with_verbs(query.routes(), query.verbs, "query"))
        """
        if self._runners:
            raise RuntimeError("add API routes before serve_http()")
        self._extra_routes.extend(routes)

    def api_routes(self) -> list[ApiRoute]:
        """Every route of the API port with its permission: the alert API, Prometheus' query
        API (``get`` on ``queries``), then the routes given to the constructor."""
        alert_routes = [
            route
            for r in self.alerts.http_routes()
            for route in guarded([r], ALERT_API_RESOURCES[r.path])
        ]
        # A query only reads, POST included (Grafana sends form-encoded POSTs).
        query_routes = [ApiRoute(r, Permission("get", "queries")) for r in self.query_api.routes()]
        return [*alert_routes, *query_routes, *self._extra_routes]

    def api_app(self) -> web.Application:
        """The API port: :meth:`api_routes`, each behind the guard."""
        return api_app(self.guard, self.api_routes())

    async def check_review_rights(self) -> list[str]:
        """With ``server.auth: kubernetes``, warn at start if foresight may not create the
        reviews it needs (every API request would be a 503); returns what is missing."""
        if self.settings.server.auth != "kubernetes":
            return []
        retry, timeout = review_retry(self.settings)
        try:
            missing = await missing_review_rights(self.api, self.clock, retry, timeout)
        except AccessUnavailable as e:
            log.warning("cannot check the rights the API's authentication needs: %s", e)
            return []
        if missing:
            log.warning(
                "server.auth is kubernetes, but foresight may not %s: every API request will "
                "be answered 503 until it may (the chart's ClusterRole grants it)",
                " nor ".join(missing),
            )
        return missing

    async def serve_http(self) -> int:
        """Start both HTTP servers; returns the metrics port (the API's is ``api_port``)."""
        host = self.settings.server.host
        self.port = await self._serve(self.app(), host, self.settings.server.port)
        tls = self.tls.context if self.tls is not None else None
        self.api_port = await self._serve(self.api_app(), host, self.settings.server.api_port, tls)
        log.info(
            "serving /metrics, /healthz, /readyz on %s:%d; the API on %s://%s:%d (auth: %s)",
            host,
            self.port,
            "https" if tls else "http",
            host,
            self.api_port,
            self.settings.server.auth,
        )
        metrics_api = self.external_metrics
        if metrics_api is not None and metrics_api.tls is not None:
            port = self.settings.external_metrics.port
            if self.settings.external_metrics.requestheader_client_ca_file is None:
                retry, timeout = review_retry(self.settings)
                await trust_cluster_front_proxy(metrics_api, self.api, self.clock, retry, timeout)
            self.external_metrics_port = await self._serve(
                metrics_api.app(), host, port, metrics_api.tls.context
            )
            log.info(
                "serving external.metrics.k8s.io on https://%s:%d", host, self.external_metrics_port
            )
        return self.port

    async def _serve(
        self, app: web.Application, host: str, port: int, tls: ssl.SSLContext | None = None
    ) -> int:
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=self.http_drain_seconds
        )
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, host, port, ssl_context=tls)
        await site.start()
        server: Any = site._server
        return int(server.sockets[0].getsockname()[1])

    # -- the whole service ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Every loop on its timer until ``stop``; then shut down in order.

        The leader elector, the rule engine and the store's flusher are supervised: one that
        dies stops the service (``/readyz`` fails meanwhile) and :class:`ServiceFailed` is
        raised after the graceful shutdown. Collection and reconcile steps are retried on the
        next interval instead: one failed step is logged and counted, never fatal.
        """
        await self.start()
        await self.serve_http()
        await self.check_review_rights()
        supervisor = self.supervisor = Supervisor(stop)
        supervisor.spawn("leader", self.elector.run(stop))
        if self.shards is not None:
            supervisor.spawn("shards", self.shards.run(stop))
        supervisor.spawn(
            "collect",
            self._every(self.settings.collectors.scrape_interval_seconds, self._collect, stop),
        )
        supervisor.spawn(
            "control",
            self._every(self.settings.controller.interval_seconds, self.control_once, stop),
        )
        supervisor.spawn("flusher", self.store.run_flusher())
        supervisor.spawn("alerts", self.alerts.run(stop))
        if self.history is not None:
            supervisor.spawn("backfill", self.history.run(stop))
        # Also with no receiver left: it forgets the saved positions of removed ones.
        supervisor.spawn("remote_write", self.remote_write.run())
        if self.tls is not None:
            supervisor.spawn("tls", self.tls.run(self.clock, stop))
        if self.external_metrics is not None and self.external_metrics.tls is not None:
            supervisor.spawn(
                "external-metrics-tls", self.external_metrics.tls.run(self.clock, stop)
            )
        await stop.wait()
        log.info("stopping: releasing the lease and flushing the store")
        # Stopped before the store closes: batches in flight get their remote timeout to be
        # acknowledged; one cut off is sent again at the next start.
        remote = supervisor.tasks.get("remote_write")
        if remote is not None:
            await self.remote_write.stop()
            remote.cancel()
        await supervisor.wait(cancel=("collect", "control", "flusher", "backfill"))
        await self.close()
        if supervisor.failure is not None:
            raise ServiceFailed(str(supervisor.failure))

    async def _collect(self) -> None:
        await self.collect_once()
        # What is alive after a cycle (store, index, caches, the kubelets' last points)
        # mostly lives on: full collections stop walking it, and stop stalling the loop.
        freeze_long_lived()
        server = self.settings.server
        if server.render_metrics_in_child and server.huge_pages:
            await collapse_heap_off_loop()

    async def _every(
        self, seconds: float, step: Callable[[], Awaitable[Any]], stop: asyncio.Event
    ) -> None:
        await self.wait_synced()
        while not stop.is_set():
            started = self.clock.now()
            try:
                await step()
            except Exception:
                log.exception(
                    "%s failed; next attempt in %.0f s", step.__name__.strip("_"), seconds
                )
            await sleep_or_stop(self.clock, max(0.0, seconds - (self.clock.now() - started)), stop)

    async def close(self) -> None:
        """Stop watching, persist alert state and the outbox, close connections and the HTTP
        server, flush and close the store. Once: later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        await self.alerts.aclose()
        await self.watcher.stop()
        if self._storage_http is not None:
            await self._storage_http.aclose()
            self._storage_http = None
        for client in (self._http, self._pod_http, self._history_http):
            if client is not None:
                await client.aclose()
        self._http = self._pod_http = self._history_http = None
        while self._runners:
            await self._runners.pop().cleanup()
        self.query_api.close()
        self.store.flush()
        self.store.close()
