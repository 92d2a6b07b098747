"""Fault injection: what goes wrong, where, and for how long.

Faults come from a scenario's timeline or are injected while the simulator runs (the
``/simulator/v1/faults`` endpoint or ``SimulatedCluster.inject``). API and kubelet faults act
on requests; ``node-down`` and ``watch-disconnect`` act on the cluster.

Delays of ``slow`` faults are real seconds: they exist to exercise clients' real timeouts.
A ``timeout`` fault never answers; the request hangs until the client gives up.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulator.durations import parse_duration

__all__ = ["FaultAction", "FaultInjector", "FaultSpec"]

FaultType = Literal[
    "api-error",
    "api-timeout",
    "api-slow",
    "kubelet-error",
    "kubelet-garbage",
    "kubelet-timeout",
    "kubelet-slow",
    "watch-disconnect",
    "node-down",
]
API_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


class FaultSpec(BaseModel):
    """One fault: its type, when (virtual time after start), for how long, and where."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: FaultType
    at: float = Field(0.0, ge=0, description="virtual seconds after the start (or '2h30m')")
    duration: float | None = Field(None, gt=0, description="virtual seconds; unset: forever")
    verbs: tuple[str, ...] = Field((), description="API verbs hit; empty: all")
    resources: tuple[str, ...] = Field((), description="plural resource names hit; empty: all")
    nodes: tuple[str, ...] = Field((), description="kubelets hit (node names); empty: all")
    node: str | None = Field(None, description="the node that goes down (node-down)")
    code: int = Field(500, ge=400, le=599, description="HTTP status of an error fault")
    retry_after: float | None = Field(None, alias="retryAfter", ge=0, description="seconds")
    delay: float = Field(2.0, ge=0, description="real seconds a slow fault waits")
    probability: float = Field(1.0, gt=0, le=1, description="share of requests hit")

    @field_validator("at", "duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("verbs")
    @classmethod
    def _verbs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for verb in value:
            if verb not in API_VERBS:
                raise ValueError(f"unknown verb {verb!r} (valid: {', '.join(API_VERBS)})")
        return value

    def active(self, start: float, now: float) -> bool:
        begin = start + self.at
        return begin <= now and (self.duration is None or now < begin + self.duration)


@dataclass(frozen=True)
class FaultAction:
    """What to do with one request: fail with ``code``, hang, delay, or answer garbage."""

    kind: Literal["error", "timeout", "slow", "garbage"]
    code: int = 500
    retry_after: float | None = None
    delay: float = 0.0


class FaultInjector:
    """The active faults; asked once per request.

    ``on_kubelet_request``, when set, is told of every kubelet request of a node that is up
    (node name, time, the fault applied or None, the path): a chaos run uses it to know what a
    collector was able to scrape.
    """

    def __init__(self, start: float, rng: random.Random | None = None) -> None:
        self.start = start
        self._faults: list[FaultSpec] = []
        self._rng = rng or random.Random(0)
        self.on_kubelet_request: Callable[[str, float, FaultAction | None, str], None] | None = None

    def add(self, fault: FaultSpec) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    @property
    def faults(self) -> list[FaultSpec]:
        return list(self._faults)

    def _hits(self, fault: FaultSpec, now: float) -> bool:
        if not fault.active(self.start, now):
            return False
        return fault.probability >= 1.0 or self._rng.random() < fault.probability

    def api_action(self, verb: str, resource: str, now: float) -> FaultAction | None:
        """The fault for an API request (``resource`` is the plural), or None."""
        for f in self._faults:
            if not f.type.startswith("api-"):
                continue
            if f.verbs and verb not in f.verbs:
                continue
            if f.resources and resource not in f.resources:
                continue
            if self._hits(f, now):
                return _action(f)
        return None

    def kubelet_action(
        self, node: str, now: float, path: str = "metrics/resource"
    ) -> FaultAction | None:
        """The fault for a kubelet request of ``node`` for ``path``, or None."""
        action = self._kubelet_action(node, now)
        if self.on_kubelet_request is not None:
            self.on_kubelet_request(node, now, action, path)
        return action

    def _kubelet_action(self, node: str, now: float) -> FaultAction | None:
        for f in self._faults:
            if not f.type.startswith("kubelet-"):
                continue
            if f.nodes and node not in f.nodes:
                continue
            if self._hits(f, now):
                return _action(f)
        return None


def _action(f: FaultSpec) -> FaultAction:
    kind = f.type.split("-", 1)[1]
    if kind == "error":
        return FaultAction("error", f.code, f.retry_after)
    if kind == "timeout":
        return FaultAction("timeout")
    if kind == "slow":
        return FaultAction("slow", delay=f.delay)
    return FaultAction("garbage")
