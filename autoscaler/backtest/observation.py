"""What a replica policy may know at a step, and the policy interface.

The replay hands a policy a :class:`DemandHistory` whose buffer is filled one step at a time:
the values of later steps are not in any object the policy can reach, so no policy can read
the future, whatever it does with what it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["DemandHistory", "Observation", "ReplicaPolicy", "WorkloadInfo"]


class DemandHistory:
    """Demand on the regular grid from the first step up to now, appended step by step."""

    def __init__(self, start_time: float, step_seconds: float, capacity: int) -> None:
        self.start_time = start_time
        self.step_seconds = step_seconds
        self._buffer = np.full(capacity, np.nan, dtype=np.float64)
        self._length = 0

    def append(self, value: float) -> None:
        """Record the demand of the next step."""
        self._buffer[self._length] = value
        self._length += 1

    def extend(self, values: NDArray[np.float64]) -> None:
        """Record the demand of several steps at once (the warm-up)."""
        end = self._length + len(values)
        self._buffer[self._length : end] = values
        self._length = end

    def __len__(self) -> int:
        return self._length

    @property
    def values(self) -> NDArray[np.float64]:
        """A read-only view of every value recorded so far, oldest first."""
        view = self._buffer[: self._length]
        view.flags.writeable = False
        return view

    @property
    def now(self) -> float:
        """Time of the latest recorded step (unix seconds)."""
        return self.start_time + (self._length - 1) * self.step_seconds

    def last(self) -> float:
        """The latest recorded value."""
        return float(self._buffer[self._length - 1])


@dataclass(frozen=True)
class WorkloadInfo:
    """What an operator knows about the workload before the replay: its pods and the clock."""

    capacity_per_replica: float
    step_seconds: float
    startup_seconds: float


@dataclass(frozen=True)
class Observation:
    """Everything a controller could know at one step."""

    now: float
    history: DemandHistory
    utilisation: float
    current: int
    ready: int


class ReplicaPolicy(Protocol):
    """Chooses a replica count at every step."""

    def initial(self, history: DemandHistory) -> int:
        """Replicas (all ready) when the replay starts; ``history`` ends at the first step."""
        ...

    def decide(self, obs: Observation) -> int:
        """Replicas wanted after this step."""
        ...
