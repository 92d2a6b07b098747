"""List and watch the cluster's objects into the :class:`ClusterModel`.

One task per kind: list (in pages), then watch from the list's resourceVersion with
bookmarks, resuming after every clean end of a watch; a 410 Gone (the version was compacted
away) or the resync period leads to a fresh list. API errors are retried with backoff on the
clock; any other failure of one kind (a bug, an object the model rejects) is logged with its
traceback, counted (reason ``internal``) and that kind alone is listed again after the
backoff. A watch that the server ends at its timeout is normal operation: it is resumed, not
logged above DEBUG nor counted as an error. The official client is blocking, so requests run
in threads; the model is only ever changed on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes.watch.watch import iter_resp_lines

from collectors.cluster_model import KINDS, ClusterModel
from collectors.kube import KubeApiError, api_backoff, call, translate
from collectors.settings import KubernetesSettings
from runtime.clock import Clock

log = logging.getLogger(__name__)

GONE = 410


class _Gone(Exception):
    """The watch's resourceVersion is too old: relist."""


@dataclass
class WatchHealth:
    """Counters of list/watch, exported on /metrics."""

    lists: dict[str, int] = field(default_factory=dict)
    relists_gone: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    watches: dict[str, int] = field(default_factory=dict)  # watch requests started

    def count(self, table: dict[Any, int], key: Any) -> None:
        table[key] = table.get(key, 0) + 1


def list_functions(api: k8s.ApiClient) -> dict[str, Callable[..., Any]]:
    """The all-namespaces list function of every watched kind."""
    core, apps, batch = k8s.CoreV1Api(api), k8s.AppsV1Api(api), k8s.BatchV1Api(api)
    return {
        "Node": core.list_node,
        "Pod": core.list_pod_for_all_namespaces,
        "Deployment": apps.list_deployment_for_all_namespaces,
        "StatefulSet": apps.list_stateful_set_for_all_namespaces,
        "DaemonSet": apps.list_daemon_set_for_all_namespaces,
        "ReplicaSet": apps.list_replica_set_for_all_namespaces,
        "Job": batch.list_job_for_all_namespaces,
        "CronJob": batch.list_cron_job_for_all_namespaces,
        "HorizontalPodAutoscaler": k8s.AutoscalingV2Api(
            api
        ).list_horizontal_pod_autoscaler_for_all_namespaces,
    }


def _reason(error: KubeApiError) -> str:
    if error.status == 0:
        return "unreachable"
    return {429: "throttled", 401: "unauthorized", 403: "forbidden"}.get(
        error.status, "server_error" if error.status >= 500 else f"http_{error.status}"
    )


class ClusterWatcher:
    """Keeps a :class:`ClusterModel` in step with the API server."""

    def __init__(
        self,
        api: k8s.ApiClient,
        clock: Clock,
        settings: KubernetesSettings,
        model: ClusterModel | None = None,
        kinds: tuple[str, ...] = KINDS,
    ) -> None:
        self.model = model or ClusterModel()
        self.health = WatchHealth()
        self._clock = clock
        self._settings = settings
        self._retry = api_backoff(settings)
        self._functions = list_functions(api)
        self._kinds = kinds
        self._synced = {kind: asyncio.Event() for kind in kinds}
        self._tasks: list[asyncio.Task[None]] = []
        self._open: set[Any] = set()
        self._open_lock = threading.Lock()

    @property
    def synced(self) -> bool:
        """Whether every kind has been listed at least once (``/readyz``)."""
        return all(e.is_set() for e in self._synced.values())

    async def wait_synced(self) -> None:
        await asyncio.gather(*(e.wait() for e in self._synced.values()))

    def start(self) -> None:
        """Start one list/watch task per kind."""
        self._tasks = [
            asyncio.create_task(self._run(kind), name=f"watch-{kind}") for kind in self._kinds
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._interrupt_watches()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _run(self, kind: str) -> None:
        failures = 0
        version: str | None = None
        listed_at = 0.0
        while True:
            try:
                if (
                    version is None
                    or self._clock.now() - listed_at >= self._settings.resync_seconds
                ):
                    version = await self._list(kind)
                    listed_at = self._clock.now()
                version = await self._watch(kind, version)
                failures = 0
            except _Gone:
                version = None
                self.health.count(self.health.relists_gone, kind)
                log.info("watch of %s expired (410 Gone); listing again", kind)
            except KubeApiError as e:
                # A failed watch resumes from the same version after the pause: relisting a
                # large cluster on every hiccup would be the expensive way to recover.
                failures += 1
                self.health.count(self.health.errors, (kind, _reason(e)))
                pause = self._retry.delay(failures, e.retry_after)
                log.warning(
                    "list/watch of %s failed: %s; attempt %d, retrying in %.1f s",
                    kind,
                    e,
                    failures,
                    pause,
                    extra={"kind": kind},
                )
                await self._clock.sleep(pause)
            except Exception as e:
                # A bug or an object the model cannot take: this kind alone starts over with
                # a fresh list after the backoff; the other kinds' watches go on.
                failures += 1
                version = None
                self.health.count(self.health.errors, (kind, "internal"))
                pause = self._retry.delay(failures, None)
                log.exception(
                    "list/watch of %s failed unexpectedly: %s; attempt %d, listing again in %.1f s",
                    kind,
                    e,
                    failures,
                    pause,
                    extra={"kind": kind},
                )
                await self._clock.sleep(pause)

    async def _list(self, kind: str) -> str:
        fn = self._functions[kind]
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self._settings.list_page_size}
            if token:
                kwargs["_continue"] = token
            response = await call(
                fn,
                clock=self._clock,
                retry=self._retry,
                what=f"list {kind}",
                _preload_content=False,
                _request_timeout=self._settings.request_timeout_seconds,
                **kwargs,
            )
            page = json.loads(response.data)
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                break
        self.model.replace(kind, items)
        self.health.count(self.health.lists, kind)
        self._synced[kind].set()
        return str(meta.get("resourceVersion", ""))

    async def _watch(self, kind: str, version: str) -> str:
        """Apply events until the server ends the watch; returns the last resourceVersion."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        timeout = self._settings.watch_timeout_seconds
        fn = self._functions[kind]

        def post(item: tuple[str, Any]) -> None:
            # The loop may be gone when an interrupted watch thread gets here at shutdown.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, item)

        # This watch's own response: ending it must never cut the other kinds' watches.
        opened: list[Any] = []
        done = threading.Event()

        def pump() -> None:
            try:
                response = fn(
                    watch=True,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=timeout,
                    _preload_content=False,
                    _request_timeout=timeout + 30,
                )
                with self._open_lock:
                    self._open.add(response)
                    opened.append(response)
                try:
                    if not done.is_set():
                        for line in iter_resp_lines(response):
                            if line:
                                post(("line", line))
                finally:
                    with self._open_lock:
                        self._open.discard(response)
                    response.close()
                    response.release_conn()
            except Exception as e:  # translated on the loop side
                post(("error", e))
            else:
                post(("end", None))

        self.health.count(self.health.watches, kind)
        # A plain daemon thread, not the executor: a watch blocked on a silent server must not
        # hold up shutdown.
        pumping = threading.Thread(target=pump, name=f"watch-{kind}", daemon=True)
        pumping.start()
        try:
            while True:
                what, payload = await queue.get()
                if what == "end":
                    return version
                if what == "error":
                    raise translate(payload, self._clock.now())
                version = self._apply(kind, payload, version)
        finally:
            done.set()
            if pumping.is_alive():
                with self._open_lock:
                    for response in opened:
                        _shut(response)

    def _interrupt_watches(self) -> None:
        # Shutting the socket down unblocks a read in progress in the pump thread.
        with self._open_lock:
            for response in list(self._open):
                _shut(response)

    def _apply(self, kind: str, line: str, version: str) -> str:
        try:
            event = json.loads(line)
            event_type = event["type"]
            obj = event["object"]
        except (ValueError, KeyError, TypeError):
            self.health.count(self.health.errors, (kind, "bad_event"))
            return version
        if event_type == "ERROR":
            if obj.get("code") == GONE:
                raise _Gone()
            raise KubeApiError(int(obj.get("code", 0)), str(obj.get("message", "watch error")))
        new_version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if event_type != "BOOKMARK":
            self.model.apply(kind, event_type, obj)
            self.health.count(self.health.events, kind)
        return new_version


def _shut(response: Any) -> None:
    """Shut a watch response's socket down, which unblocks its reader thread."""
    connection = getattr(response, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
