"""The controller's view of autoscalers while their history is back-filled.

:class:`BackfillGate` is the controller's :class:`~autoscaler.controller.kube_actions.KubeActions`
with three additions, so the controller itself needs no change:

* **Discovery.** Every list of autoscalers the controller makes tells the gate which workloads
  it follows; each new series (:class:`~autoscaler.backfill.mapping.BackfillTarget`) is queued
  for :meth:`BackfillGate.run`, the worker that fills it, one chunk at a time, newest first.
* **Holding back.** A new autoscaler whose history is still being read is not admitted
  (:meth:`BackfillGate.admits`, the service's part of the controller's ``assigned`` hook) for
  at most ``history.wait_seconds``: the controller reads a workload's history from the store
  once, when it first reconciles the autoscaler, so it should first see it complete.
  Meanwhile its claim on the workload still counts for conflicts. History that arrives after
  the wait (a Prometheus that was down) is taken up by not admitting the autoscaler for one
  more cycle: the controller forgets its state, as after a restart (which never shortens a
  scale-down window), and reads the history anew.
* **The ``HistoryBackfilled`` condition**, merged into every status the controller writes,
  and written by the gate itself when it changes: ``False``/``Backfilling`` while reading,
  ``True``/``Backfilled`` or ``HistoryPresent`` when done, ``False`` with
  ``PrometheusUnavailable`` or ``QueryFailed`` and the error while retrying (forever, with
  backoff), ``False``/``NoHistoryInPrometheus`` when the server has none, and
  ``False``/``CustomQuery`` for a load query of the user's own.

Progress goes to the log (start, every quarter, end) and to ``foresight_history_backfill_*``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx
from kubernetes import client as k8s
from pydantic import ValidationError

from autoscaler.backfill.copier import Chunk, HistoryCopier
from autoscaler.backfill.mapping import BackfillTarget, target_of
from autoscaler.backfill.metrics import backfill_families
from autoscaler.controller.decide import ConditionValue
from autoscaler.controller.kube_actions import KubeActions
from autoscaler.controller.status import Conditions
from autoscaler.resource.model import Condition, Mode, PredictiveAutoscalerStatus
from autoscaler.resource.objects import Autoscaler, read_autoscaler
from collectors.kube import KubeApiError, api_backoff
from collectors.prometheus_source import PrometheusSource, PrometheusSourceError
from runtime.backoff import Backoff
from runtime.clock import Clock
from runtime.endpoint import EndpointAuthError
from runtime.families import Family
from runtime.redact import redact_text, redact_url
from tsdb import Store

if TYPE_CHECKING:
    from autoscaler.settings import Settings

__all__ = ["CONDITION", "BackfillGate"]

log = logging.getLogger(__name__)

CONDITION = "HistoryBackfilled"

State = Literal["queued", "running", "done", "failed"]


@dataclass
class _Work:
    """The back-fill of one series."""

    target: BackfillTarget
    state: State = "queued"
    value: ConditionValue = field(
        default_factory=lambda: ConditionValue("False", "Backfilling", "waiting for its turn")
    )
    attempt: int = 0
    retry_at: float = 0.0
    samples: int = 0
    # Set when samples arrived after an autoscaler on it was already admitted to the controller.
    late: bool = False


@dataclass
class _Watched:
    """One autoscaler the gate follows."""

    uid: str
    target: BackfillTarget | None
    first_seen: float
    admitted: bool = False
    forget_once: bool = False
    conditions: Conditions = field(default_factory=Conditions)
    # The other conditions, as last written (by the controller) or listed.
    others: list[Condition] = field(default_factory=list)
    written: tuple[str, str] | None = None


def _conditions_of(status: Any) -> list[Condition]:
    """The conditions of a raw status, the gate's own left out."""
    found = []
    for item in (status or {}).get("conditions") or []:
        try:
            condition = Condition.model_validate(item)
        except ValidationError:
            continue
        if condition.type != CONDITION:
            found.append(condition)
    return found


class BackfillGate(KubeActions):
    """The controller's Kubernetes actions, holding back autoscalers whose history is on its
    way and reporting it on their status; :meth:`run` does the back-fill."""

    def __init__(
        self,
        api: k8s.ApiClient,
        clock: Clock,
        retry: Backoff,
        timeout_s: float,
        *,
        copier: HistoryCopier,
        backoff: Backoff,
        wait_seconds: float,
        source_url: str,
    ) -> None:
        super().__init__(api, clock, retry, timeout_s)
        self._copier = copier
        self._backoff = backoff
        self._wait = wait_seconds
        self._url = redact_url(source_url)
        self._works: dict[BackfillTarget, _Work] = {}
        self._watched: dict[tuple[str, str], _Watched] = {}
        self._held: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self.queries = {"ok": 0, "error": 0}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        api: k8s.ApiClient,
        clock: Clock,
        store: Store,
        client: httpx.AsyncClient,
    ) -> BackfillGate:
        """The gate of ``foresight run``: ``history`` settings, the controller's grid and
        window, the Kubernetes client's retries; ``client`` from
        :func:`~autoscaler.backfill.client.history_client`."""
        history = settings.history
        assert history.prometheus_url is not None
        backoff = Backoff(history.retry_initial_seconds, history.retry_max_seconds, jitter=0.1)
        # A couple of quick retries inside a query (honouring Retry-After); the gate's own
        # backoff after that.
        source = PrometheusSource(
            client,
            history.prometheus_url,
            clock,
            Backoff(history.retry_initial_seconds, history.retry_max_seconds, attempts=2),
            headers=history.request_headers,
            timeout_s=history.timeout_seconds,
        )
        step = settings.controller.history_step_seconds
        copier = HistoryCopier(
            source,
            store,
            clock,
            step_seconds=step,
            window_seconds=settings.forecast.history_days * 86_400,
            # What the controller's history holds across (the engine's lookback) is no gap.
            max_gap_seconds=settings.promql.lookback_delta_seconds + step,
            chunk_seconds=history.chunk_hours * 3600,
            extra_matchers=history.extra_matchers,
            rate_window_seconds=history.rate_window_seconds,
        )
        kube = settings.kubernetes
        return cls(
            api,
            clock,
            api_backoff(kube),
            kube.request_timeout_seconds,
            copier=copier,
            backoff=backoff,
            wait_seconds=history.wait_seconds,
            source_url=history.prometheus_url,
        )

    # -- what the controller sees ---------------------------------------------------------

    async def list_autoscalers(self) -> list[dict[str, Any]]:
        """The autoscalers; the gate decides here which it holds back this cycle."""
        objects = await super().list_autoscalers()
        now = self._clock.now()
        held = set()
        seen = set()
        for obj in objects:
            parsed = read_autoscaler(obj)
            seen.add(parsed.key)
            if isinstance(parsed, Autoscaler) and self._hold(parsed, now):
                held.add(parsed.key)
        self._held = held
        for key in [k for k in self._watched if k not in seen]:
            del self._watched[key]
        await self._publish(self._works.values())
        return objects

    def admits(self, namespace: str, name: str) -> bool:
        """Whether the controller reconciles the autoscaler this cycle (not while its history
        is on its way, within the wait)."""
        return (namespace, name) not in self._held

    def _hold(self, parsed: Autoscaler, now: float) -> bool:
        target = (
            target_of(parsed.namespace, parsed.spec) if parsed.spec.mode is not Mode.OFF else None
        )
        watched = self._watched.get(parsed.key)
        if watched is None or watched.uid != parsed.uid:
            watched = self._watched[parsed.key] = _Watched(parsed.uid, target, now)
            watched.others = _conditions_of(parsed.status)
        elif watched.target != target:
            watched.target, watched.first_seen = target, now
        if parsed.spec.mode is Mode.OFF:
            return False
        if target is None:
            watched.conditions.set(
                CONDITION,
                ConditionValue(
                    "False",
                    "CustomQuery",
                    "the load is a PromQL query of its own: its history is not read from "
                    "Prometheus",
                ),
                now,
            )
            return False
        work = self._works.get(target)
        if work is None:
            work = self._works[target] = _Work(target)
            self._wake.set()
        watched.conditions.set(CONDITION, work.value, now)
        if watched.forget_once:
            # History arrived after the controller had read the store: held back for one
            # cycle, the controller forgets its state and reads the history again.
            watched.forget_once, watched.admitted = False, False
            log.info(
                "%s/%s: history from Prometheus arrived; the controller reads it again",
                *parsed.key,
                extra={"namespace": parsed.namespace, "autoscaler": parsed.name},
            )
            return True
        if work.state != "done" and not watched.admitted and now - watched.first_seen < self._wait:
            return True
        watched.admitted = True
        return False

    async def write_status(
        self, namespace: str, name: str, status: PredictiveAutoscalerStatus
    ) -> None:
        """The controller's status, with the ``HistoryBackfilled`` condition."""
        watched = self._watched.get((namespace, name))
        mine = (
            [c for c in watched.conditions.as_list() if c.type == CONDITION]
            if watched is not None
            else []
        )
        if watched is not None:
            watched.others = [c for c in status.conditions if c.type != CONDITION]
        if mine:
            status = status.model_copy(update={"conditions": [*status.conditions, *mine]})
            assert watched is not None
            watched.written = (mine[0].status, mine[0].reason)
        await super().write_status(namespace, name, status)

    async def _publish(self, works: Iterable[_Work]) -> None:
        """Write the condition where it changed in substance."""
        now = self._clock.now()
        by_target = {w.target: w for w in works}
        for (namespace, name), watched in list(self._watched.items()):
            work = by_target.get(watched.target) if watched.target is not None else None
            if work is not None:
                watched.conditions.set(CONDITION, work.value, now)
            mine = [c for c in watched.conditions.as_list() if c.type == CONDITION]
            if not mine or watched.written == (mine[0].status, mine[0].reason):
                continue
            watched.written = (mine[0].status, mine[0].reason)
            status = PredictiveAutoscalerStatus(conditions=[*watched.others, *mine])
            try:
                await super().write_status(namespace, name, status)
            except KubeApiError as e:
                watched.written = None
                log.warning("cannot write status of %s/%s: %s", namespace, name, e)

    # -- the worker ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Back-fill queued series one at a time until ``stop``; failures are retried with
        backoff, forever."""
        while not stop.is_set():
            now = self._clock.now()
            due = [
                w
                for w in self._works.values()
                if w.state == "queued" or (w.state == "failed" and w.retry_at <= now)
            ]
            if not due:
                retry_at = [w.retry_at for w in self._works.values() if w.state == "failed"]
                await self._idle(stop, min(retry_at) - now if retry_at else None)
                continue
            await self._fill(min(due, key=lambda w: (w.retry_at, str(w.target))))

    async def _idle(self, stop: asyncio.Event, seconds: float | None) -> None:
        self._wake.clear()
        waits: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._wake.wait()),
        ]
        if seconds is not None:
            waits.append(asyncio.ensure_future(self._clock.sleep(max(0.0, seconds))))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _fill(self, work: _Work) -> None:
        target = work.target
        extra = {"namespace": target.namespace, "workload": target.workload}
        work.state = "running"
        try:
            chunks = await self._copier.plan(target, self._clock.now())
            if not chunks:
                self._finish(
                    work,
                    ConditionValue(
                        "True", "HistoryPresent", "the store holds the history the forecaster reads"
                    ),
                )
            else:
                await self._start(work, chunks, extra)
        except PrometheusSourceError as e:
            self.queries["error"] += 1
            self._failed(work, e, extra)
        except EndpointAuthError as e:
            self._failed(work, e, extra)
        except Exception as e:  # the worker must outlive any one series
            log.exception("back-fill of %s failed", target, extra=extra)
            self._failed(work, e, extra)
        await self._publish([work])

    async def _start(self, work: _Work, chunks: list[Chunk], extra: dict[str, str]) -> None:
        target = work.target
        total = sum(c.seconds for c in chunks)
        log.info(
            "back-filling %s from %s: %.1f h missing, %d range queries",
            target,
            self._url,
            total / 3600,
            len(chunks),
            extra=extra,
        )
        if not work.attempt:
            # While retrying, the condition keeps saying why the last try failed.
            work.value = ConditionValue(
                "False",
                "Backfilling",
                f"reading {total / 3600:.1f} h of history from Prometheus in {len(chunks)} "
                "range queries",
            )
            await self._publish([work])
        await self._copy(work, chunks, total, extra)

    async def _copy(
        self, work: _Work, chunks: list[Chunk], total: float, extra: dict[str, str]
    ) -> None:
        done = 0.0
        quarter = 0
        written = 0
        for chunk in chunks:
            n = await self._copier.copy(work.target, chunk)
            self.queries["ok"] += 1
            written += n
            work.samples += n
            if n and any(w.admitted for w in self._watching(work.target)):
                work.late = True
            done += chunk.seconds
            if int(4 * done / total) > quarter and done < total:
                quarter = int(4 * done / total)
                log.info(
                    "back-filling %s: %d%% (%d samples)",
                    work.target,
                    round(100 * done / total),
                    written,
                    extra=extra,
                )
        log.info(
            "back-filled %s: %d samples over %.1f h",
            work.target,
            written,
            total / 3600,
            extra=extra,
        )
        if written:
            value = ConditionValue(
                "True",
                "Backfilled",
                f"{written} samples over {total / 3600:.1f} h read from Prometheus",
            )
        else:
            value = ConditionValue(
                "False",
                "NoHistoryInPrometheus",
                f"Prometheus has no samples for {self._copier.query(work.target)}",
            )
        self._finish(work, value)

    def _finish(self, work: _Work, value: ConditionValue) -> None:
        work.state, work.value, work.attempt = "done", value, 0
        if work.late:
            for watched in self._watching(work.target):
                if watched.admitted:
                    watched.forget_once = True

    def _failed(self, work: _Work, error: Exception, extra: dict[str, str]) -> None:
        work.attempt += 1
        pause = self._backoff.delay(work.attempt)
        work.state, work.retry_at = "failed", self._clock.now() + pause
        text = redact_text(str(error))[:400]
        reason = "CredentialsUnreadable" if isinstance(error, EndpointAuthError) else "QueryFailed"
        if isinstance(error, PrometheusSourceError) and (
            error.error_type == "unreachable" or error.status in (429, 502, 503, 504)
        ):
            reason = "PrometheusUnavailable"
        work.value = ConditionValue(
            "False", reason, f"{text}; try {work.attempt + 1} in {pause:.0f} s"
        )
        log.warning(
            "back-fill of %s from %s failed (attempt %d): %s; next try in %.0f s",
            work.target,
            self._url,
            work.attempt,
            text,
            pause,
            extra=extra,
        )

    def _watching(self, target: BackfillTarget) -> list[_Watched]:
        return [w for w in self._watched.values() if w.target == target]

    # -- metrics -------------------------------------------------------------------------

    def families(self) -> list[Family]:
        """``foresight_history_backfill_*``, computed now."""
        return backfill_families(
            {w.target: w.samples for w in self._works.values()},
            self.queries,
            sum(w.state != "done" for w in self._works.values()),
        )
