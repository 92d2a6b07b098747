"""The reconcile loop: every interval, each PredictiveAutoscaler is read, decided and acted on.

Per autoscaler: validate the spec (an invalid one gets a condition and is skipped); find the
target in the cluster model; read the load and its history from the store; forecast; decide
replicas and requests with the pure policies; and, in mode ``Auto``, when this replica leads
and no other autoscaler targets the workload, act through the API. Status is written when it
changes in substance, and at least every ``status_every_seconds``. A failure of one
autoscaler is logged and reported in its status; the others go on.

Safety: the scale call re-checks min/max; missing or stale load holds the count (the policy's
fail-static rule); after a restart the scale-down window starts again from the current count,
so a restart never shortens stabilisation.

Conflicts: a workload (namespace, kind, name) claimed by two or more PredictiveAutoscalers
(not in mode ``Off``), or by one and a HorizontalPodAutoscaler or VerticalPodAutoscaler, is
acted on by none of them: each gets ``ConflictingAutoscaler=True`` naming the others (oldest
first, by creationTimestamp then name) and keeps forecasting and recommending. Not even the
oldest acts: which object is oldest changes silently when a manifest is re-applied by delete
and create, and two specs for one workload are a mistake only the operator can settle.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from autoscaler.controller.decide import (
    ConditionValue,
    HorizontalPlan,
    camel,
    horizontal_settings,
    plan_replicas,
    share_scaled_resource,
)
from autoscaler.controller.forecasting import KeptForecast
from autoscaler.controller.history import GridHistory
from autoscaler.controller.kube_actions import KubeActions
from autoscaler.controller.load import LoadError, LoadQuery, LoadReading, load_query
from autoscaler.controller.resize import Resizer, ResizeState
from autoscaler.controller.settings import ControllerSettings
from autoscaler.controller.status import Conditions, recommendation, rfc3339
from autoscaler.controller.vertical import ContainerPlan, VerticalKeeper, usage_queries
from autoscaler.controller.workload import PodIndex, WorkloadView, pods_by_workload, view_of
from autoscaler.forecast.settings import ForecastSettings
from autoscaler.policy.horizontal import LoadSignal, ReplicaState
from autoscaler.policy.settings import PolicySettings
from autoscaler.resource.model import (
    ForecastStatus,
    LastDecision,
    Mode,
    PredictiveAutoscalerStatus,
)
from autoscaler.resource.objects import Autoscaler, InvalidAutoscaler, read_autoscaler
from collectors.cluster_model import ClusterModel
from collectors.kube import KubeApiError
from promql import Engine
from promql.errors import PromQLError
from runtime import names
from runtime.clock import Clock, in_thread
from runtime.families import Deferred, Family, Kind

__all__ = ["Controller", "Snapshot"]

log = logging.getLogger(__name__)

# After a scale call the watch may lag behind; trust what was set for this long.
_TRUST_OWN_WRITE_SECONDS = 60.0
_VPA_EVERY_CYCLES = 20


@dataclass
class Snapshot:
    """What the autoscaler looks like now, for ``/metrics`` and the demo."""

    namespace: str
    name: str
    target_kind: str = ""
    target: str = ""
    mode: str = ""
    load: float | None = None
    forecast: float | None = None
    quantile: float | None = None
    horizon_seconds: float | None = None
    metric: str = ""  # cpu, memory or query: the load's kind
    current: int | None = None
    desired: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    forecast_error: float | None = None
    recommendations: dict[tuple[str, str], float] = field(default_factory=dict)
    conditions: dict[str, str] = field(default_factory=dict)


@dataclass
class _State:
    """What the controller keeps per autoscaler between reconciles."""

    uid: str
    generation: int
    query: LoadQuery | None = None
    history: GridHistory | None = None
    forecast: KeptForecast | None = None
    replicas: ReplicaState | None = None
    horizontal: HorizontalPlan | None = None  # this cycle's, for the joint vertical decision
    vertical: VerticalKeeper | None = None
    conditions: Conditions = field(default_factory=Conditions)
    last_decision: LastDecision | None = None
    last_scale_time: str | None = None
    last_set: tuple[int, float] | None = None
    resize: ResizeState = field(default_factory=ResizeState)
    plans: list[ContainerPlan] = field(default_factory=list)
    status_digest: Any = None
    status_written_at: float | None = None
    warned_generation: int | None = None
    snapshot: Snapshot | None = None


class Controller:
    """Reconciles every PredictiveAutoscaler; the service calls :meth:`reconcile_all` every
    ``controller.interval_seconds``."""

    def __init__(
        self,
        actions: KubeActions,
        model: ClusterModel,
        engine: Engine,
        clock: Clock,
        settings: ControllerSettings,
        forecast: ForecastSettings,
        policy: PolicySettings,
        is_leader: Callable[[], bool] = lambda: True,
        assigned: Callable[[str, str], bool] = lambda namespace, name: True,
        may_act: Callable[[str, str], bool] | None = None,
    ) -> None:
        """``assigned(namespace, name)`` says which autoscalers this replica reconciles (its
        shard; all by default), ``may_act`` on which of them it may act now (by default: all,
        while ``is_leader()``)."""
        self._actions = actions
        self._model = model
        self._engine = engine
        self._clock = clock
        self._settings = settings
        self._forecast_settings = forecast
        self._policy = policy
        self._is_leader = is_leader
        self._assigned = assigned
        self._may_act = may_act or (lambda namespace, name: is_leader())
        self._states: dict[tuple[str, str], _State] = {}
        self._vpas: set[tuple[str, str, str]] = set()
        # (namespace, kind, name) -> the autoscalers claiming it, oldest first.
        self._claims: dict[tuple[str, str, str], list[str]] = {}
        self._pods: PodIndex = {}
        self._cycles = 0
        self.decisions: dict[tuple[str, str, str, str], int] = {}
        self.actions_log: list[dict[str, Any]] = []
        self.reconcile_errors = 0
        self.last_cycle_at: float | None = None
        self._resizer = Resizer(actions, settings, policy, self.decisions, self.actions_log)

    # -- the cycle -----------------------------------------------------------------------

    async def reconcile_all(self) -> None:
        """One cycle over every autoscaler."""
        objects = await self._actions.list_autoscalers()
        if self._cycles % _VPA_EVERY_CYCLES == 0:
            await self._refresh_vpas()
        self._cycles += 1
        # One pass over the pods per cycle, not one per autoscaler.
        self._pods = pods_by_workload(self._model)
        parsed_objects = [(obj, read_autoscaler(obj)) for obj in objects]
        self._claims = _claims(parsed_objects)
        seen = set()
        for _, parsed in parsed_objects:
            if not self._assigned(*parsed.key):
                continue  # another shard's: its state goes below
            seen.add(parsed.key)
            try:
                await self.reconcile(parsed)
            except Exception as e:
                self.reconcile_errors += 1
                log.exception("reconcile of %s/%s failed", *parsed.key)
                await self._report_failure(parsed, e)
        for key in [k for k in self._states if k not in seen]:
            del self._states[key]
        self.last_cycle_at = self._clock.now()

    async def _refresh_vpas(self) -> None:
        try:
            items = await self._actions.vertical_pod_autoscalers()
        except KubeApiError as e:
            log.warning("cannot list verticalpodautoscalers: %s", e)
            return
        self._vpas = {
            (
                str(v.get("metadata", {}).get("namespace", "")),
                str((v.get("spec") or {}).get("targetRef", {}).get("kind", "")),
                str((v.get("spec") or {}).get("targetRef", {}).get("name", "")),
            )
            for v in items
        }

    def _state(self, parsed: Autoscaler | InvalidAutoscaler) -> _State:
        state = self._states.get(parsed.key)
        if state is None or state.uid != parsed.uid:
            state = self._states[parsed.key] = _State(parsed.uid, parsed.generation)
        if state.generation != parsed.generation:
            # A new spec: forget what depends on it, keep history and conditions.
            state.generation = parsed.generation
            state.query = None
            state.forecast = None
        return state

    # -- one autoscaler --------------------------------------------------------------------

    async def reconcile(self, parsed: Autoscaler | InvalidAutoscaler) -> None:
        """Decide and act for one autoscaler."""
        now = self._clock.now()
        state = self._state(parsed)
        if isinstance(parsed, InvalidAutoscaler):
            await self._invalid(parsed, state, now)
            return
        spec = parsed.spec
        snap = Snapshot(
            parsed.namespace,
            parsed.name,
            spec.target_ref.kind,
            spec.target_ref.name,
            spec.mode.value,
        )
        state.snapshot = snap
        if spec.mode is Mode.OFF:
            return
        ref = spec.target_ref
        view = view_of(self._model, self._pods, parsed.namespace, ref.kind, ref.name)
        if view is None:
            state.conditions.set(
                "AbleToScale",
                ConditionValue(
                    "False",
                    "TargetNotFound",
                    f"{ref.kind} {parsed.namespace}/{ref.name} does not exist",
                ),
                now,
            )
            await self._write_status(parsed, state, now, None, None)
            return
        view = self._trust_own_write(view, state, now)
        snap.current = view.replicas
        conflicts = self._conflicts(parsed, view)
        state.conditions.set(
            "ConflictingAutoscaler",
            ConditionValue("True", "ConflictDetected", "; ".join(conflicts) + ": not acting")
            if conflicts
            else ConditionValue("False", "NoConflict", "no other autoscaler targets the workload"),
            now,
        )
        acting = (
            spec.mode is Mode.AUTO
            and not conflicts
            and self._may_act(parsed.namespace, parsed.name)
        )

        reading = await self._read_load(parsed, state, now)
        snap.load = reading.value
        peak = await self._forecast(parsed, state, reading, now)
        snap.forecast = peak
        snap.quantile = spec.forecast.quantile
        snap.horizon_seconds = spec.forecast.horizon_seconds
        snap.metric = (
            spec.horizontal.metric.type.value.lower() if spec.horizontal is not None else "cpu"
        )
        snap.forecast_error = state.forecast.error_ratio if state.forecast else None

        desired: int | None = None
        if spec.horizontal is not None:
            desired = await self._horizontal(parsed, state, view, reading, peak, acting, now)
            snap.min_replicas = spec.horizontal.min_replicas
            snap.max_replicas = spec.horizontal.max_replicas
            snap.desired = desired
        if spec.vertical is not None:
            await self._vertical(parsed, state, view, acting, now)
            for plan in state.plans:
                for resource, decision in plan.decisions.items():
                    snap.recommendations[(plan.container, resource)] = decision.request
        snap.conditions = {c.type: c.status for c in state.conditions.as_list()}
        await self._write_status(parsed, state, now, view, desired, reading, peak)

    def _trust_own_write(self, view: WorkloadView, state: _State, now: float) -> WorkloadView:
        if state.last_set is None:
            return view
        replicas, at = state.last_set
        if view.replicas == replicas or now - at > _TRUST_OWN_WRITE_SECONDS:
            state.last_set = None
            return view
        return WorkloadView(
            view.kind, view.namespace, view.name, replicas, view.ready, view.pods, view.containers
        )

    def _conflicts(self, parsed: Autoscaler, view: WorkloadView) -> list[str]:
        found = [
            f"HorizontalPodAutoscaler {h.namespace}/{h.name} targets {view.kind}/{view.name}"
            for h in self._model.hpas_targeting(view.namespace, view.kind, view.name)
        ]
        if (view.namespace, view.kind, view.name) in self._vpas:
            found.append(f"a VerticalPodAutoscaler targets {view.kind}/{view.name}")
        found.extend(
            f"PredictiveAutoscaler {view.namespace}/{other} targets {view.kind}/{view.name}"
            for other in self._claims.get((view.namespace, view.kind, view.name), [])
            if other != parsed.name
        )
        return found

    async def _read_load(self, parsed: Autoscaler, state: _State, now: float) -> LoadReading:
        spec = parsed.spec
        if state.query is None:
            state.query = load_query(parsed.namespace, spec)
        step = self._settings.history_step_seconds
        keep = self._forecast_settings.history_days * 86_400
        try:
            if state.history is None:
                history = GridHistory(step, keep, self._engine.settings.lookback_delta_seconds)
                start = now - keep
                start -= start % step
                # A week of history is a long query: off the loop, as the fit is.
                past = await in_thread(
                    self._clock, state.query.history, self._engine, start, now, step
                )
                history.fill(start, past)
                state.history = history
            # Off the loop: with a remote store, the read may need the network.
            reading = await in_thread(self._clock, state.query.read, self._engine, now)
        except LoadError as e:
            state.conditions.set(
                "ForecastReady", ConditionValue("False", "LoadQueryFailed", str(e)[:500]), now
            )
            return LoadReading(None, None)
        if reading.value is not None and reading.observed_at is not None:
            state.history.observe(reading.observed_at, reading.value)
        return reading

    async def _forecast(
        self, parsed: Autoscaler, state: _State, reading: LoadReading, now: float
    ) -> float | None:
        spec = parsed.spec
        if state.forecast is None:
            state.forecast = KeptForecast(
                spec.forecast, self._forecast_settings, self._settings.history_step_seconds
            )
        series = state.history.series() if state.history is not None else None
        if series is None or reading.value is None:
            if state.conditions.status_of("ForecastReady") is None or reading.value is None:
                state.conditions.set(
                    "ForecastReady",
                    ConditionValue("False", "NoData", "no load data for this workload yet"),
                    now,
                )
            return None
        peak = await state.forecast.peak_async(series, reading.value, self._clock)
        choice = state.forecast.choice
        if state.forecast.ready:
            value = ConditionValue(
                "True", camel(choice.reason.value), f"model {choice.name} ({choice.reason.value})"
            )
        else:
            hours = self._forecast_settings.min_history_hours
            value = ConditionValue(
                "False",
                camel(choice.reason.value),
                f"forecasting reactively ({choice.name}): needs {hours:g} h of history "
                f"with few gaps",
            )
        state.conditions.set("ForecastReady", value, now)
        return peak if math.isfinite(peak) else None

    async def _horizontal(
        self,
        parsed: Autoscaler,
        state: _State,
        view: WorkloadView,
        reading: LoadReading,
        peak: float | None,
        acting: bool,
        now: float,
    ) -> int | None:
        spec = parsed.spec
        assert spec.horizontal is not None
        settings = horizontal_settings(spec.horizontal, self._policy.horizontal)
        if state.replicas is None:
            # A fresh start counts as a recommendation of the current count: the scale-down
            # window starts again rather than being skipped.
            state.replicas = ReplicaState(view.replicas, 1.0, ((now, view.replicas),))
        signal = LoadSignal(reading.value, reading.observed_at, peak)
        plan = plan_replicas(spec.horizontal, view, signal, state.replicas, settings, now)
        if isinstance(plan, ConditionValue):
            state.horizontal = None
            state.conditions.set("AbleToScale", plan, now)
            return None
        state.horizontal = plan
        state.replicas = plan.decision.state
        state.conditions.set("AbleToScale", plan.able, now)
        state.conditions.set("ScalingLimited", plan.limited, now)
        desired = plan.decision.replicas
        if desired != view.replicas:
            await self._scale(parsed, state, view, plan, acting, now)
        return desired

    async def _scale(
        self,
        parsed: Autoscaler,
        state: _State,
        view: WorkloadView,
        plan: HorizontalPlan,
        acting: bool,
        now: float,
    ) -> None:
        spec = parsed.spec
        assert spec.horizontal is not None
        desired = plan.decision.replicas
        direction = "up" if desired > view.replicas else "down"
        reason = plan.decision.reason.value
        if not acting:
            return
        bounds = (spec.horizontal.min_replicas, spec.horizontal.max_replicas)
        result = await self._actions.scale(parsed.namespace, view.kind, view.name, desired, bounds)
        if not result.changed:
            return
        state.last_set = (desired, now)
        state.last_scale_time = rfc3339(now)
        state.last_decision = LastDecision(
            time=rfc3339(now),
            direction=direction,
            from_replicas=result.before,
            to_replicas=desired,
            reason=reason,
            message=plan.message,
        )
        key = (parsed.namespace, parsed.name, direction, reason)
        self.decisions[key] = self.decisions.get(key, 0) + 1
        self.actions_log.append(
            {
                "time": now,
                "autoscaler": f"{parsed.namespace}/{parsed.name}",
                "kind": "scale",
                "from": result.before,
                "to": desired,
                "reason": reason,
                "message": plan.message,
            }
        )
        log.info(
            "scaled %s %s/%s from %d to %d: %s",
            view.kind,
            parsed.namespace,
            view.name,
            result.before,
            desired,
            plan.message,
            extra={"namespace": parsed.namespace, "autoscaler": parsed.name},
        )
        await self._actions.event(
            parsed.namespace,
            parsed.name,
            parsed.uid,
            "ScaledUp" if direction == "up" else "ScaledDown",
            f"{view.kind} {view.name}: {result.before} -> {desired} replicas ({plan.message})",
        )

    async def _vertical(
        self, parsed: Autoscaler, state: _State, view: WorkloadView, acting: bool, now: float
    ) -> None:
        spec = parsed.spec
        assert spec.vertical is not None
        if state.vertical is None:
            state.vertical = VerticalKeeper(
                self._policy.vertical, self._settings.resize_every_seconds
            )
        try:
            usage = await in_thread(self._clock, self._container_usage, view, now)
        except PromQLError as e:
            # Fail static: without usage nothing is resized this round.
            log.warning(
                "container usage unavailable, no resize this round: %s",
                e,
                extra={"namespace": parsed.namespace, "autoscaler": parsed.name},
            )
            return
        state.vertical.observe(view, usage, now)
        if not state.vertical.due(now):
            return
        plans = share_scaled_resource(
            state.vertical.decide(spec.vertical, view, now),
            view,
            spec.horizontal,
            state.horizontal if spec.horizontal is not None else None,
            self._policy,
        )
        state.plans = plans
        if acting:
            await self._resizer.apply(
                parsed, state.resize, state.conditions, view, plans, spec.vertical.update_mode, now
            )

    def _container_usage(self, view: WorkloadView, now: float) -> dict[tuple[str, str, str], float]:
        usage: dict[tuple[str, str, str], float] = {}
        at_ms = round(now * 1000)
        for resource, query in usage_queries(view).items():
            for series in self._engine.instant(query, at_ms).series:
                labels = dict(series.labels)
                if len(series.values):
                    key = (labels.get("pod", ""), labels.get("container", ""), resource)
                    usage[key] = float(series.values[-1])
        return usage

    # -- status --------------------------------------------------------------------------

    async def _invalid(self, parsed: InvalidAutoscaler, state: _State, now: float) -> None:
        state.conditions.set(
            "AbleToScale", ConditionValue("False", "InvalidSpec", parsed.message), now
        )
        state.snapshot = Snapshot(parsed.namespace, parsed.name, mode="Invalid")
        if state.warned_generation != parsed.generation:
            state.warned_generation = parsed.generation
            log.warning("predictiveautoscaler %s/%s is invalid: %s", *parsed.key, parsed.message)
            await self._actions.event(
                parsed.namespace, parsed.name, parsed.uid, "InvalidSpec", parsed.message, True
            )
        status = PredictiveAutoscalerStatus(
            observed_generation=parsed.generation, conditions=state.conditions.as_list()
        )
        digest = ("invalid", parsed.generation, state.conditions.digest())
        if digest != state.status_digest:
            await self._actions.write_status(parsed.namespace, parsed.name, status)
            state.status_digest, state.status_written_at = digest, now

    async def _report_failure(
        self, parsed: Autoscaler | InvalidAutoscaler, error: Exception
    ) -> None:
        state = self._states.get(parsed.key)
        if state is None:
            return
        now = self._clock.now()
        state.conditions.set(
            "AbleToScale",
            ConditionValue("False", "ReconcileFailed", f"{type(error).__name__}: {error}"[:500]),
            now,
        )
        try:
            await self._actions.write_status(
                parsed.namespace,
                parsed.name,
                PredictiveAutoscalerStatus(conditions=state.conditions.as_list()),
            )
        except KubeApiError as e:
            log.warning("cannot write status of %s/%s: %s", *parsed.key, e)
        state.status_digest = None

    async def _write_status(
        self,
        parsed: Autoscaler,
        state: _State,
        now: float,
        view: WorkloadView | None,
        desired: int | None,
        reading: LoadReading | None = None,
        peak: float | None = None,
    ) -> None:
        forecast = None
        if peak is not None and state.forecast is not None:
            forecast = ForecastStatus(
                load=round(peak, 6),
                quantile=parsed.spec.forecast.quantile,
                horizon_seconds=parsed.spec.forecast.horizon_seconds,
                model=state.forecast.choice.name,
                time=rfc3339(now),
            )
        load = reading.value if reading is not None else None
        status = PredictiveAutoscalerStatus(
            observed_generation=parsed.generation,
            current_replicas=view.replicas if view is not None else None,
            desired_replicas=desired,
            load=round(load, 6) if load is not None else None,
            forecast=forecast,
            recommendations=[recommendation(p) for p in state.plans] or None,
            last_decision=state.last_decision,
            last_scale_time=state.last_scale_time,
            conditions=state.conditions.as_list(),
        )
        digest = (
            parsed.generation,
            status.current_replicas,
            desired,
            state.conditions.digest(),
            status.recommendations,
            state.last_decision,
        )
        due = (
            state.status_written_at is None
            or now - state.status_written_at >= self._settings.status_every_seconds
        )
        if digest == state.status_digest and not due:
            return
        await self._actions.write_status(parsed.namespace, parsed.name, status)
        state.status_digest, state.status_written_at = digest, now

    # -- metrics ---------------------------------------------------------------------------

    def snapshots(self) -> list[Snapshot]:
        """The latest view of every autoscaler."""
        return [s.snapshot for s in self._states.values() if s.snapshot is not None]

    def families(self) -> Deferred:
        """``foresight_autoscaler_*`` families, made where they are rendered or recorded
        (off the loop: at 1,000 autoscalers they are 15,000 samples) from copies taken now.
        A reconcile fills its snapshot across awaits, so each is copied with its tables."""
        copies = [
            replace(s, recommendations=dict(s.recommendations), conditions=dict(s.conditions))
            for s in self.snapshots()
        ]
        return Deferred(partial(autoscaler_families, copies, dict(self.decisions)))


def autoscaler_families(
    snapshots: list[Snapshot], decisions: dict[tuple[str, str, str, str], int]
) -> list[Family]:
    """The autoscaler metrics of the contract in ``DESIGN.md``."""
    specs: tuple[tuple[str, Kind, str], ...] = (
        (names.AUTOSCALER_INFO, "gauge", "1 per autoscaler, with target and mode."),
        (names.AUTOSCALER_LOAD, "gauge", "Load now, in the autoscaler's metric unit."),
        (names.AUTOSCALER_FORECAST, "gauge", "Forecast peak load over the horizon."),
        (names.AUTOSCALER_CURRENT_REPLICAS, "gauge", "Replicas of the target now."),
        (names.AUTOSCALER_DESIRED_REPLICAS, "gauge", "Replicas the autoscaler wants."),
        (names.AUTOSCALER_MIN_REPLICAS, "gauge", "Lower replica bound."),
        (names.AUTOSCALER_MAX_REPLICAS, "gauge", "Upper replica bound."),
        (names.AUTOSCALER_RECOMMENDED_CPU, "gauge", "Recommended CPU request."),
        (
            names.AUTOSCALER_RECOMMENDED_MEMORY,
            "gauge",
            "Recommended memory request.",
        ),
        (
            names.AUTOSCALER_FORECAST_ERROR,
            "gauge",
            "Mean absolute error of recent forecast peaks / realised peaks.",
        ),
        (names.AUTOSCALER_CONDITION, "gauge", "1 per condition and status."),
        (
            names.AUTOSCALER_DECISIONS,
            "counter",
            "Scaling actions taken, by direction and reason.",
        ),
    )
    f = {name: Family(name, kind, help_text) for name, kind, help_text in specs}
    for s in snapshots:
        base = {"namespace": s.namespace, "autoscaler": s.name}
        f[names.AUTOSCALER_INFO].add(
            1, **base, target_kind=s.target_kind, target=s.target, mode=s.mode
        )
        f[names.AUTOSCALER_LOAD].add(s.load, **base)
        if s.forecast is not None and s.quantile is not None:
            f[names.AUTOSCALER_FORECAST].add(s.forecast, **base, quantile=f"{s.quantile:g}")
        f[names.AUTOSCALER_CURRENT_REPLICAS].add(s.current, **base)
        f[names.AUTOSCALER_DESIRED_REPLICAS].add(s.desired, **base)
        f[names.AUTOSCALER_MIN_REPLICAS].add(s.min_replicas, **base)
        f[names.AUTOSCALER_MAX_REPLICAS].add(s.max_replicas, **base)
        f[names.AUTOSCALER_FORECAST_ERROR].add(s.forecast_error, **base)
        for (container, resource), value in sorted(s.recommendations.items()):
            name = (
                names.AUTOSCALER_RECOMMENDED_CPU
                if resource == "cpu"
                else names.AUTOSCALER_RECOMMENDED_MEMORY
            )
            f[name].add(value, **base, container=container)
        for condition, status in sorted(s.conditions.items()):
            f[names.AUTOSCALER_CONDITION].add(1, **base, condition=condition, status=status.lower())
    for (ns, name, direction, reason), count in sorted(decisions.items()):
        f[names.AUTOSCALER_DECISIONS].add(
            count, namespace=ns, autoscaler=name, direction=direction, reason=reason
        )
    return list(f.values())


def _claims(
    objects: list[tuple[dict[str, Any], Autoscaler | InvalidAutoscaler]],
) -> dict[tuple[str, str, str], list[str]]:
    """The names of the valid autoscalers (not ``Off``) per target workload, oldest first."""
    claims: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for obj, parsed in objects:
        if isinstance(parsed, InvalidAutoscaler) or parsed.spec.mode is Mode.OFF:
            continue
        ref = parsed.spec.target_ref
        # RFC 3339 in UTC, one format: the strings sort as the times do.
        created = str((obj.get("metadata") or {}).get("creationTimestamp") or "")
        claims.setdefault((parsed.namespace, ref.kind, ref.name), []).append((created, parsed.name))
    return {target: [name for _, name in sorted(who)] for target, who in claims.items()}
