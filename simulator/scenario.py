"""Scenarios: the cluster to simulate, in YAML.

A scenario lists nodes, namespaces, workloads (with their load and memory behaviour), a
fault timeline and the PredictiveAutoscalers to create (``foresight demo --scenario``).
``load_scenario("default")`` gives the built-in one. A malformed file fails
with ``file:line:col: field.path: message``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from runtime.quantity import parse_quantity
from simulator.app_metrics import AppMetricsSpec
from simulator.cron import CronSchedule
from simulator.durations import parse_duration
from simulator.errors import ScenarioError
from simulator.faults import FaultSpec
from simulator.objects import parse_time

__all__ = [
    "AutoscalerSpec",
    "FlashCrowd",
    "LoadSpec",
    "MemorySpec",
    "NodeGroup",
    "Scenario",
    "WorkloadSpec",
    "load_scenario",
    "parse_scenario",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _seconds(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


def _quantity(value: object) -> object:
    return (
        parse_quantity(value)
        if isinstance(value, str | int | float) and not isinstance(value, bool)
        else value
    )


class NodeGroup(_Model):
    """``count`` identical nodes named ``name`` (count 1) or ``name-1`` ... ``name-N``."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    count: int = Field(1, ge=1, le=10_000)
    cpu: float = Field(4.0, gt=0, description="allocatable cores")
    memory: float = Field(16 * 2**30, gt=0, description="allocatable bytes")
    pods: int = Field(110, ge=1, le=1000)
    labels: dict[str, str] = Field(default_factory=dict)
    roles: tuple[str, ...] = ()
    zone: str = "zone-a"
    instance_type: str = Field("sim.large", alias="instanceType")
    taints: tuple[dict[str, str], ...] = ()

    _q = field_validator("cpu", "memory", mode="before")(_quantity)

    def names(self) -> list[str]:
        if self.count == 1:
            return [self.name]
        return [f"{self.name}-{i}" for i in range(1, self.count + 1)]


class FlashCrowd(_Model):
    """A burst of demand: ``factor`` times the normal load, rising fast, fading out."""

    at: float = Field(ge=0, description="virtual seconds after the start")
    duration: float = Field(1800.0, gt=0)
    factor: float = Field(3.0, ge=1)

    _d = field_validator("at", "duration", mode="before")(_seconds)


class LoadSpec(_Model):
    """Total CPU demand of a workload (cores), from a trace or a generated pattern."""

    trace: Path | None = Field(None, description="CSV `timestamp,value`, relative to the file")
    pattern: Literal["constant", "daily", "weekly"] | None = None
    peak: float = Field(1.0, ge=0, description="cores at the trace's p99 or the pattern's peak")
    base: float = Field(0.2, ge=0, description="share of the peak at the quietest time")
    peak_hour: float = Field(14.0, ge=0, lt=24, alias="peakHour")
    noise: float = Field(0.05, ge=0, le=1, description="relative noise (deterministic)")
    offset: float = Field(0.0, description="seconds into the trace at the simulation start")
    flash_crowds: tuple[FlashCrowd, ...] = Field((), alias="flashCrowds")

    _d = field_validator("offset", mode="before")(_seconds)

    @model_validator(mode="after")
    def _one_source(self) -> LoadSpec:
        if (self.trace is None) == (self.pattern is None):
            raise ValueError("give exactly one of 'trace' and 'pattern'")
        return self


class MemorySpec(_Model):
    """Working set per pod: ``base`` + ``perCore`` x CPU used + ``leakPerHour`` x uptime."""

    base: float = Field(128 * 2**20, ge=0)
    per_core: float = Field(256 * 2**20, ge=0, alias="perCore")
    leak_per_hour: float = Field(0.0, ge=0, alias="leakPerHour")

    _q = field_validator("base", "per_core", "leak_per_hour", mode="before")(_quantity)


class WorkloadSpec(_Model):
    """A workload and how it behaves."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    namespace: str = "default"
    kind: Literal["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"] = "Deployment"
    replicas: int = Field(1, ge=0, le=100_000)
    image: str = "registry.example/app:1.0"
    container: str = Field("app", description="container name")
    requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "100m", "memory": "128Mi"})
    limits: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    startup_seconds: float = Field(30.0, ge=0, alias="startupSeconds")
    load: LoadSpec | None = None
    memory: MemorySpec = Field(default_factory=MemorySpec)
    schedule: str | None = Field(None, description="cron schedule of a CronJob")
    job_seconds: float = Field(120.0, gt=0, alias="jobSeconds")
    failure_rate: float = Field(0.0, ge=0, le=1, alias="failureRate")
    completions: int = Field(1, ge=1)
    parallelism: int = Field(1, ge=1)
    resize_policy: dict[
        Literal["cpu", "memory"], Literal["NotRequired", "PreferNoRestart", "RestartContainer"]
    ] = Field(
        default_factory=dict,
        alias="resizePolicy",
        description="the container's resizePolicy by resource (unset: NotRequired)",
    )
    metrics: AppMetricsSpec | None = Field(
        None, description="the pods expose a request counter at prometheus.io/port and path"
    )

    _d = field_validator("startup_seconds", "job_seconds", mode="before")(_seconds)

    @field_validator("requests", "limits")
    @classmethod
    def _resources(cls, value: dict[str, str]) -> dict[str, str]:
        for name, q in value.items():
            if name not in ("cpu", "memory", "ephemeral-storage"):
                raise ValueError(
                    f"unknown resource {name!r} (valid: cpu, memory, ephemeral-storage)"
                )
            parse_quantity(str(q))
        return {k: str(v) for k, v in value.items()}

    @model_validator(mode="after")
    def _kind_fields(self) -> WorkloadSpec:
        if self.kind == "CronJob" and not self.schedule:
            raise ValueError("a CronJob needs 'schedule'")
        if self.schedule is not None:
            CronSchedule.parse(self.schedule)
        return self


class AutoscalerSpec(_Model):
    """A PredictiveAutoscaler to create: its ``spec`` is the resource's own (camelCase), checked
    by the controller when it reads the object, as in a cluster."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    namespace: str = "default"
    spec: dict[str, Any]

    @field_validator("spec")
    @classmethod
    def _target(cls, value: dict[str, Any]) -> dict[str, Any]:
        ref = value.get("targetRef")
        if not isinstance(ref, dict) or not ref.get("name"):
            raise ValueError("needs 'targetRef' with 'kind' and 'name'")
        return value


class Scenario(_Model):
    """A whole simulated cluster."""

    name: str = "scenario"
    start: float | None = Field(None, description="virtual start, unix seconds or RFC 3339")
    tick: float = Field(10.0, gt=0, le=3600, description="virtual seconds between updates")
    seed: int = 0
    kubelet_port_base: int = Field(0, ge=0, le=65000, alias="kubeletPortBase")
    nodes: tuple[NodeGroup, ...] = Field(min_length=1)
    namespaces: tuple[str, ...] = ()
    workloads: tuple[WorkloadSpec, ...] = ()
    faults: tuple[FaultSpec, ...] = ()
    autoscalers: tuple[AutoscalerSpec, ...] = ()
    eviction_seconds: float = Field(300.0, ge=0, alias="evictionSeconds")
    pod_resize: bool = Field(
        True,
        alias="podResize",
        description="serve pods/resize; false: 404, as a server before 1.33 or without the "
        "InPlacePodVerticalScaling feature gate",
    )
    source: Path | None = Field(None, exclude=True)

    _d = field_validator("tick", "eviction_seconds", mode="before")(_seconds)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_time(value)
        if hasattr(value, "timestamp"):
            return value.timestamp()
        return value

    @model_validator(mode="after")
    def _unique(self) -> Scenario:
        names = [n for g in self.nodes for n in g.names()]
        if len(set(names)) != len(names):
            raise ValueError("node names must be unique")
        seen = set()
        for w in self.workloads:
            if (w.namespace, w.name) in seen:
                raise ValueError(f"workload {w.namespace}/{w.name} is defined twice")
            seen.add((w.namespace, w.name))
        declared = set()
        for a in self.autoscalers:
            if (a.namespace, a.name) in declared:
                raise ValueError(f"autoscaler {a.namespace}/{a.name} is defined twice")
            declared.add((a.namespace, a.name))
        return self

    def node_names(self) -> list[str]:
        return [n for g in self.nodes for n in g.names()]

    def all_namespaces(self) -> list[str]:
        names = ["default", "kube-system", "kube-public", "kube-node-lease"]
        spaces = (
            *self.namespaces,
            *(w.namespace for w in self.workloads),
            *(a.namespace for a in self.autoscalers),
        )
        for ns in spaces:
            if ns not in names:
                names.append(ns)
        return names

    def resolve(self, path: Path) -> Path:
        """A trace path relative to the scenario file."""
        if path.is_absolute() or self.source is None:
            return path
        return (self.source.parent / path).resolve()


Position = tuple[int, int]
# Where each field is: (position of its key, position of its value).
Positions = dict[tuple[str, ...], tuple[Position, Position]]


def _at(mark: yaml.Mark) -> Position:
    return mark.line + 1, mark.column + 1


def _positions(node: yaml.Node, prefix: tuple[str, ...], out: Positions) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            loc = (*prefix, str(key.value))
            # Errors about a collection point at its key; about a scalar, at the value.
            nested = isinstance(value, yaml.MappingNode | yaml.SequenceNode)
            out[loc] = (_at(key.start_mark), _at(key.start_mark if nested else value.start_mark))
            _positions(value, loc, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            loc = (*prefix, str(i))
            out[loc] = (_at(item.start_mark), _at(item.start_mark))
            _positions(item, loc, out)


def parse_scenario(text: str, source: str | Path = "<scenario>") -> Scenario:
    """A validated scenario from YAML text; ScenarioError names file, line and field."""
    where = str(source)
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        raise ScenarioError(at, "", f"invalid YAML: {getattr(e, 'problem', None) or e}") from e
    if not isinstance(node, yaml.MappingNode):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ScenarioError(f"{where}:{line}:1", "", "a scenario must be a mapping")
    positions: Positions = {}
    _positions(node, (), positions)
    data: dict[str, Any] = yaml.safe_load(text)
    if isinstance(source, Path):
        data["source"] = source
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        field = ".".join(loc) or "scenario"
        line, col = 1, 1
        unknown = err["type"] == "extra_forbidden"
        for depth in range(len(loc), 0, -1):
            if loc[:depth] in positions:
                key_at, value_at = positions[loc[:depth]]
                line, col = key_at if unknown else value_at
                break
        message = err["msg"]
        if unknown:
            message = "unknown field"
        more = len(e.errors()) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ScenarioError(f"{where}:{line}:{col}", field, message) from e


def load_scenario(name_or_path: str | Path) -> Scenario:
    """``"default"`` (built in) or a YAML file."""
    if str(name_or_path) == "default":
        text = resources.files("simulator").joinpath("scenarios/default.yaml").read_text()
        return parse_scenario(text, "default")
    path = Path(name_or_path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ScenarioError(str(path), "", f"cannot read the scenario: {e.strerror}") from e
    return parse_scenario(text, path)
