"""The HorizontalPodAutoscaler controller of kube-controller-manager, for ``External`` metrics.

Every ``sync_seconds`` (15, the upstream ``--horizontal-pod-autoscaler-sync-period``) each
``autoscaling/v2`` HPA is reconciled as upstream does it:

1. the target's ``scale`` subresource gives the current replicas (0: autoscaling is off);
2. each ``External`` metric is read through the aggregated
   ``/apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metric>?labelSelector=...``
   (as ``system:serviceaccount:kube-system:horizontal-pod-autoscaler``), the values of all
   items summed; an ``AverageValue`` target proposes ``ceil(sum / target)`` and a ``Value``
   target ``ceil(sum / target * current)``, unless the ratio to the target is within the
   tolerance (0.1), which keeps the current count; the largest proposal wins. Metrics of other
   types are not computed here (the simulator has no custom metrics): they are reported in
   ``ScalingActive`` and ignored;
3. stabilisation: the result is at least the lowest recommendation of the scale-up window
   (``behavior.scaleUp.stabilizationWindowSeconds``, default 0) and at most the highest of
   the scale-down window (default 300 s);
4. the default rate limits of one period: up by at most ``max(4 pods, 100 %)``, down to any
   count; then ``minReplicas`` (default 1) and ``maxReplicas``;
5. a change is written to the ``scale`` subresource with a ``SuccessfulRescale`` event, and
   the status (current metrics, replicas, conditions) is written when it changes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from runtime.clock import Clock
from runtime.quantity import format_cpu, parse_quantity
from simulator.aggregation import Aggregator, Caller
from simulator.api_core import ApiCore
from simulator.errors import ApiError
from simulator.objects import KubeObject, clone, rfc3339
from simulator.selectors import selector_to_string

__all__ = ["HPA_CALLER", "HorizontalPodAutoscalers", "propose"]

log = logging.getLogger("simulator.hpa")

HPA_CALLER = Caller(
    "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
    ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
)
TOLERANCE = 0.1
DEFAULT_DOWN_WINDOW = 300.0
EXTERNAL = ("external.metrics.k8s.io", "v1beta1")


class MetricError(Exception):
    """A metric could not be read; the message says which and why."""


def propose(total: float, target: float, average: bool, current: int) -> int:
    """The replicas one metric asks for (upstream's External metric arithmetic)."""
    if average:
        ratio = total / (target * current)
        return current if abs(1.0 - ratio) <= TOLERANCE else math.ceil(total / target)
    ratio = total / target
    return current if abs(1.0 - ratio) <= TOLERANCE else math.ceil(ratio * current)


@dataclass
class _Kept:
    """Per HPA between syncs: its recommendations (time, replicas)."""

    uid: str
    recommendations: deque[tuple[float, int]] = field(default_factory=deque)


class HorizontalPodAutoscalers:
    """Reconciles every HPA through ``aggregator`` (see the module); ``sync_seconds`` None:
    only when :meth:`sync_once` is called."""

    def __init__(
        self,
        core: ApiCore,
        clock: Clock,
        aggregator: Aggregator,
        sync_seconds: float | None = 15.0,
        token: str | None = None,
    ) -> None:
        self.core = core
        self.clock = clock
        self.aggregator = aggregator
        self.sync_seconds = sync_seconds
        # Without a front proxy the aggregated server sees this token (the simulator's own).
        self.caller = Caller(
            HPA_CALLER.user, HPA_CALLER.groups, f"Bearer {token}" if token else None
        )
        self._kept: dict[tuple[str, str], _Kept] = {}

    async def _until_work(self) -> None:
        """Until an HPA or an APIService exists, waiting on the store, not on the clock: a
        cluster without either keeps a virtual clock's time as it would without this
        controller (a sleeper every 15 s gives a full-speed clock somewhere to jump to)."""
        kinds = [
            self.core.registry.get("autoscaling", "v2", "horizontalpodautoscalers"),
            self.core.registry.get("apiregistration.k8s.io", "v1", "apiservices"),
        ]
        keys = [rt.storage_key for rt in kinds if rt is not None]
        store = self.core.store
        subs = [store.subscribe(key) for key in keys]
        try:
            if any(store.count(key) for key in keys):
                return
            getters = [asyncio.ensure_future(sub.queue.get()) for sub in subs]
            try:
                await asyncio.wait(getters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for getter in getters:
                    getter.cancel()
        finally:
            for sub in subs:
                store.unsubscribe(sub)

    async def run(self) -> None:
        """Sync every ``sync_seconds`` until cancelled; APIService availability too."""
        if self.sync_seconds is None:
            return
        period = self.sync_seconds
        started = self.clock.now()
        await self._until_work()
        # A fixed schedule (15 s, 30 s, ... after the start): a slow sync does not push the
        # next ones later, and a slot passed while waiting for the first object is taken at once.
        next_at = started + period
        while True:
            await self.clock.sleep(max(0.0, next_at - self.clock.now()))
            while next_at <= self.clock.now():
                next_at += period
            try:
                await self.aggregator.check_availability(self.clock.now())
                await self.sync_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("HPA sync failed")

    async def sync_once(self) -> None:
        """Reconcile every HPA once."""
        rt = self.core.registry.get("autoscaling", "v2", "horizontalpodautoscalers")
        assert rt is not None
        seen = set()
        for stored in list(self.core.store.items(rt.storage_key)):
            hpa = stored.obj
            key = (hpa["metadata"]["namespace"], hpa["metadata"]["name"])
            seen.add(key)
            await self._reconcile(rt, hpa)
        for key in set(self._kept) - seen:
            del self._kept[key]

    async def _reconcile(self, rt: Any, hpa: KubeObject) -> None:
        now = self.clock.now()
        meta, spec = hpa["metadata"], hpa.get("spec") or {}
        namespace = meta["namespace"]
        kept = self._kept.get((namespace, meta["name"]))
        if kept is None or kept.uid != meta.get("uid"):
            kept = self._kept[(namespace, meta["name"])] = _Kept(str(meta.get("uid")))
        ref = spec.get("scaleTargetRef") or {}
        target_rt = self.core.registry.by_kind(str(ref.get("apiVersion", "")), str(ref.get("kind")))
        conditions: list[tuple[str, str, str, str]] = []
        status: dict[str, Any] = dict(hpa.get("status") or {})
        try:
            if target_rt is None:
                raise ApiError.not_found("", str(ref.get("kind")))
            scale = self.core.get_scale(target_rt, namespace, str(ref.get("name")))
        except ApiError as e:
            conditions.append(("AbleToScale", "False", "FailedGetScale", e.message))
            self._write_status(rt, hpa, status, conditions, now)
            return
        current = int(scale["spec"]["replicas"])
        status["currentReplicas"] = int(scale.get("status", {}).get("replicas", current))
        if current == 0 and int(spec.get("minReplicas", 1)) != 0:
            conditions.append(
                (
                    "ScalingActive",
                    "False",
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero",
                )
            )
            status["desiredReplicas"] = 0
            self._write_status(rt, hpa, status, conditions, now)
            return
        conditions.append(
            (
                "AbleToScale",
                "True",
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale",
            )
        )
        proposals, metrics_now, problems = await self._proposals(namespace, spec, current)
        if not proposals:
            conditions.append(
                (
                    "ScalingActive",
                    "False",
                    "FailedGetExternalMetric",
                    "; ".join(problems) or "no metric the simulator computes",
                )
            )
            status["desiredReplicas"] = current
            self._write_status(rt, hpa, status, conditions, now)
            return
        status["currentMetrics"] = metrics_now
        conditions.append(
            (
                "ScalingActive",
                "True",
                "ValidMetricFound",
                "the HPA was able to "
                "successfully calculate a replica count from "
                + "; ".join(problems or ["its metrics"]),
            )
        )
        desired, limited = self._stabilised(kept, spec, max(proposals), current, now)
        conditions.append(limited)
        status["desiredReplicas"] = desired
        if desired != current:
            self.core.replace(
                target_rt, namespace, str(ref["name"]), {"spec": {"replicas": desired}}, "scale"
            )
            status["lastScaleTime"] = rfc3339(now)
            self._event(hpa, desired, now)
            log.info("hpa %s/%s: %d -> %d", namespace, meta["name"], current, desired)
        self._write_status(rt, hpa, status, conditions, now)

    async def _proposals(
        self, namespace: str, spec: dict[str, Any], current: int
    ) -> tuple[list[int], list[dict[str, Any]], list[str]]:
        proposals: list[int] = []
        metrics_now: list[dict[str, Any]] = []
        problems: list[str] = []
        for metric in spec.get("metrics") or []:
            if metric.get("type") != "External":
                problems.append(f"{metric.get('type')} metrics are not computed by the simulator")
                continue
            external = metric.get("external") or {}
            name = str((external.get("metric") or {}).get("name", ""))
            target = external.get("target") or {}
            average = target.get("type") == "AverageValue"
            try:
                raw = target.get("averageValue" if average else "value")
                if raw is None:
                    raise MetricError(f"the target has no {'averageValue' if average else 'value'}")
                goal = parse_quantity(raw)
                total = await self._external_sum(namespace, external.get("metric") or {})
            except (MetricError, ValueError) as e:
                problems.append(f"external metric {name}: {e}")
                continue
            if goal <= 0:
                problems.append(f"external metric {name}: the target must be above 0")
                continue
            proposals.append(propose(total, goal, average, current))
            shown = (
                {"averageValue": format_cpu(total / current)}
                if average
                else {"value": format_cpu(total)}
            )
            metrics_now.append(
                {
                    "type": "External",
                    "external": {"metric": external.get("metric"), "current": shown},
                }
            )
        return proposals, metrics_now, problems

    async def _external_sum(self, namespace: str, metric: dict[str, Any]) -> float:
        apiservice = self.aggregator.find(*EXTERNAL)
        if apiservice is None:
            raise MetricError("no APIService serves external.metrics.k8s.io/v1beta1")
        name = str(metric.get("name", ""))
        selector = selector_to_string(metric.get("selector"))
        path = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{quote(name)}"
        if selector:
            path += f"?labelSelector={quote(selector, safe='')}"
        try:
            code, body, _ = await self.aggregator.forward(
                apiservice, "GET", path, self.caller, "application/json"
            )
        except ApiError as e:
            raise MetricError(e.message) from e
        if code != 200:
            raise MetricError(f"HTTP {code}: {body[:300].decode('utf-8', 'replace')}")
        try:
            items = json.loads(body).get("items") or []
            values = [parse_quantity(item["value"]) for item in items]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise MetricError(f"unreadable ExternalMetricValueList: {e}") from e
        if not values:
            raise MetricError("no metrics returned from external metrics API")
        return sum(values)

    def _stabilised(
        self, kept: _Kept, spec: dict[str, Any], proposal: int, current: int, now: float
    ) -> tuple[int, tuple[str, str, str, str]]:
        behavior = spec.get("behavior") or {}
        up_window = float((behavior.get("scaleUp") or {}).get("stabilizationWindowSeconds") or 0)
        down = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds")
        down_window = DEFAULT_DOWN_WINDOW if down is None else float(down)
        recs = kept.recommendations
        recs.append((now, proposal))
        horizon = max(up_window, down_window)
        while recs and recs[0][0] < now - horizon:
            recs.popleft()
        up = min([r for t, r in recs if t > now - up_window] or [proposal])
        high = max([r for t, r in recs if t > now - down_window] or [proposal])
        desired = min(max(current, up), high)
        limited = (
            "ScalingLimited",
            "False",
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
        )
        up_limit = max(2 * current, current + 4)
        if desired > up_limit:
            desired = up_limit
            limited = (
                "ScalingLimited",
                "True",
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            )
        low, top = int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 1))
        if desired > top:
            desired = top
            limited = (
                "ScalingLimited",
                "True",
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        elif desired < low:
            desired = low
            limited = (
                "ScalingLimited",
                "True",
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        return desired, limited

    def _event(self, hpa: KubeObject, desired: int, now: float) -> None:
        events = self.core.registry.get("", "v1", "events")
        assert events is not None
        m = hpa["metadata"]
        reason = (
            "all metrics below target"
            if desired < int((hpa.get("status") or {}).get("currentReplicas", desired))
            else "external metric above target"
        )
        try:
            self.core.create(
                events,
                m["namespace"],
                {
                    "metadata": {"generateName": f"{m['name']}.", "namespace": m["namespace"]},
                    "involvedObject": {
                        "kind": "HorizontalPodAutoscaler",
                        "namespace": m["namespace"],
                        "name": m["name"],
                        "uid": m.get("uid"),
                        "apiVersion": "autoscaling/v2",
                    },
                    "reason": "SuccessfulRescale",
                    "message": f"New size: {desired}; reason: {reason}",
                    "type": "Normal",
                    "source": {"component": "horizontal-pod-autoscaler"},
                    "firstTimestamp": rfc3339(now),
                    "lastTimestamp": rfc3339(now),
                    "count": 1,
                },
            )
        except ApiError as e:
            log.debug("event for hpa %s: %s", m["name"], e.message)

    def _write_status(
        self,
        rt: Any,
        hpa: KubeObject,
        status: dict[str, Any],
        conditions: list[tuple[str, str, str, str]],
        now: float,
    ) -> None:
        old = {c.get("type"): c for c in (hpa.get("status") or {}).get("conditions") or []}
        status["conditions"] = [
            {
                "type": type_,
                "status": value,
                "lastTransitionTime": old[type_]["lastTransitionTime"]
                if type_ in old and old[type_].get("status") == value
                else rfc3339(now),
                "reason": reason,
                "message": message,
            }
            for type_, value, reason, message in conditions
        ]
        if status == hpa.get("status"):
            return
        new = clone(hpa)
        new["status"] = status
        new["metadata"].pop("resourceVersion", None)
        self.core.store.update(rt.storage_key, rt.group_resource, new)
