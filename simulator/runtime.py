"""What the kubelets know that the API does not: containers' usage counters and timers."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.usage import ContainerUsage

__all__ = ["ContainerRuntime", "NodeRuntime", "PodRuntime"]


@dataclass
class ContainerRuntime:
    """One running container."""

    name: str
    image: str
    container_id: str
    start_time: float
    cpu_request: float
    cpu_limit: float | None
    memory_request: float
    memory_limit: float | None
    usage: ContainerUsage = field(default_factory=ContainerUsage)
    restarts: int = 0
    ready_at: float = 0.0


@dataclass
class PodRuntime:
    """A pod bound to a node and started by its kubelet."""

    uid: str
    namespace: str
    name: str
    node: str
    workload: tuple[str, str] | None  # (namespace, workload name) whose load it serves
    start_time: float
    ready_at: float
    finish_at: float | None  # Job pods: when the container exits
    fails: bool  # Job pods: whether that exit is a failure
    containers: list[ContainerRuntime]
    ready: bool = False
    done: bool = False
    # In-place resize: the PodResizePending (reason, message) the kubelet reports; while an
    # accepted resize is applied, when it ends, the sizes running until then and the
    # containers it restarts (resizePolicy RestartContainer).
    pending: tuple[str, str] | None = None
    resizing_until: float | None = None
    actual: dict[str, tuple[float, float | None, float, float | None]] | None = None
    restart_on_resize: set[str] = field(default_factory=set)

    @property
    def cpu_seconds(self) -> float:
        return sum(c.usage.cpu_seconds for c in self.containers)

    @property
    def cpu_rate(self) -> float:
        return sum(c.usage.cpu_rate for c in self.containers)

    @property
    def memory(self) -> float:
        return sum(c.usage.memory for c in self.containers)


@dataclass
class NodeRuntime:
    """A node's kubelet: its port, health and system usage."""

    name: str
    cpu: float
    memory: float
    start_time: float
    port: int = 0
    index: int = 0  # the node's pod CIDR is 10.(index // 256).(index % 256).0/24 + 10.244
    next_ip: int = 2
    ready: bool = True
    down_since: float | None = None
    system_cpu_seconds: float = 0.0
    pods: dict[str, PodRuntime] = field(default_factory=dict)  # by pod uid

    # The node's own processes (kubelet, runtime) use a little of everything.
    SYSTEM_CPU = 0.05
    SYSTEM_MEMORY = 512 * 2**20

    @property
    def cpu_seconds(self) -> float:
        return self.system_cpu_seconds + sum(p.cpu_seconds for p in self.pods.values())

    @property
    def memory_used(self) -> float:
        return self.SYSTEM_MEMORY + sum(p.memory for p in self.pods.values())
