"""Resource usage from the kubelet's ``/metrics/resource``, and CPU rates the way metrics-server
computes them.

The kubelet reports cumulative CPU seconds and the memory working set for the node, each pod
and each container, plus each container's start time. A CPU rate needs two points of the same
container life: a counter that went down or a start time that moved means a restart, and then
there is no rate until the next scrape — except for a container started recently (more than
10 s and less than one resolution ago), whose start is a valid first point at zero CPU.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from collectors.layout import layout_fingerprint
from tsdb.exposition import (
    Exposition,
    ExpositionError,
    parse_labels,
    parse_timestamp,
    plain_sample_lines,
)

# metrics-server's freshContainerMinMetricsResolution: a shorter life gives noisy rates.
FRESH_CONTAINER_MIN_SECONDS = 10.0

NODE_CPU = "node_cpu_usage_seconds_total"
NODE_MEMORY = "node_memory_working_set_bytes"
POD_CPU = "pod_cpu_usage_seconds_total"
POD_MEMORY = "pod_memory_working_set_bytes"
CONTAINER_CPU = "container_cpu_usage_seconds_total"
CONTAINER_MEMORY = "container_memory_working_set_bytes"
CONTAINER_START = "container_start_time_seconds"

PodKey = tuple[str, str]  # namespace, pod
ContainerKey = tuple[str, str, str]  # namespace, pod, container


# Cumulative CPU seconds at a time (ms), with the start (s) of the life they were counted
# over. A plain tuple, not a NamedTuple: the cyclic collector untracks a tuple of numbers
# (never an instance of a tuple subclass), and the rate tracker keeps one per container.
CpuPoint = tuple[float, int, float | None]


@dataclass(slots=True)
class Usage:
    """CPU and memory of one node, pod or container in one scrape."""

    cpu: CpuPoint | None = None
    memory_bytes: float | None = None
    memory_timestamp_ms: int | None = None


@dataclass
class NodeResources:
    """Everything one ``/metrics/resource`` response says."""

    node: Usage = field(default_factory=Usage)
    pods: dict[PodKey, Usage] = field(default_factory=dict)
    containers: dict[ContainerKey, Usage] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


def _valid(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def decode_resource_metrics(exposition: Exposition, scrape_time_ms: int) -> NodeResources:
    """Usage by node, pod and container; NaN, infinite and negative values are rejected."""
    out = NodeResources()
    starts: dict[ContainerKey, float] = {}
    for s in exposition.samples:
        ts = s.timestamp_ms if s.timestamp_ms is not None else scrape_time_ms
        if s.name not in _KNOWN:
            continue
        if not _valid(s.value):
            out.reject("invalid_value")
            continue
        labels = dict(s.labels)
        if s.name in (NODE_CPU, NODE_MEMORY):
            usage = out.node
        elif s.name in (POD_CPU, POD_MEMORY):
            key2 = (labels.get("namespace", ""), labels.get("pod", ""))
            if not all(key2):
                out.reject("missing_labels")
                continue
            usage = out.pods.setdefault(key2, Usage())
        else:
            key3 = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
            if not all(key3):
                out.reject("missing_labels")
                continue
            if s.name == CONTAINER_START:
                starts[key3] = s.value
                continue
            usage = out.containers.setdefault(key3, Usage())
        if s.name.endswith("_seconds_total"):
            usage.cpu = (s.value, ts, None)
        else:
            usage.memory_bytes = s.value
            usage.memory_timestamp_ms = ts
    for key, start in starts.items():
        container = out.containers.get(key)
        if container is not None and container.cpu is not None:
            cpu = container.cpu
            container.cpu = (cpu[0], cpu[1], start)
    return out


_KNOWN = frozenset(
    {NODE_CPU, NODE_MEMORY, POD_CPU, POD_MEMORY, CONTAINER_CPU, CONTAINER_MEMORY, CONTAINER_START}
)


# Label texts of a node's kubelet, parsed once: the same texts come back every scrape.
LabelKeys = dict[str, tuple[str, str, str] | None]
_KINDS = {
    NODE_CPU: 0,
    NODE_MEMORY: 1,
    POD_CPU: 2,
    POD_MEMORY: 3,
    CONTAINER_CPU: 4,
    CONTAINER_MEMORY: 5,
    CONTAINER_START: 6,
}
_LABEL_KEYS_MAX = 100_000


def _label_key(text: str, keys: LabelKeys) -> tuple[str, str, str] | None:
    """(namespace, pod, container) of a label text, "" for what is missing; None if invalid."""
    try:
        labels = dict(parse_labels(text))
    except ExpositionError:
        key = None
    else:
        key = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
    if len(keys) >= _LABEL_KEYS_MAX:
        keys.clear()  # a kubelet that invents new label texts every scrape
    keys[text] = key
    return key


def decode_resource_text(
    text: str, scrape_time_ms: int, label_keys: LabelKeys
) -> NodeResources | None:
    """``decode_resource_metrics(parse_exposition(text), scrape_time_ms)`` for a response in
    the plain layout kubelets write, with nothing to reject; None for anything else (garbled,
    duplicated, invalid or unlabelled samples), which then takes the full path.

    ``label_keys`` carries parsed label texts from one scrape of a node to the next.
    """
    lines = plain_sample_lines(text)
    return None if lines is None else _decode_lines(lines, scrape_time_ms, label_keys)


def _decode_lines(
    lines: list[tuple[str, str, str, str]], scrape_time_ms: int, label_keys: LabelKeys
) -> NodeResources | None:
    """:func:`decode_resource_text` of the sample lines of a response in the plain layout."""
    out = NodeResources()
    node = out.node
    pods = out.pods
    containers = out.containers
    starts: dict[ContainerKey, float] = {}
    seen: set[tuple[int, tuple[str, str, str]]] = set()
    for name, label_text, value_text, ts_text in lines:
        try:
            value = float(value_text)
        except ValueError:
            return None
        kind = _KINDS.get(name)
        if kind is None:
            continue
        if value == math.inf:
            return None
        if not ts_text:
            ts = scrape_time_ms
        elif len(ts_text) < 19:
            ts = int(ts_text)  # digits by the pattern, within int64 (parse_timestamp's check)
        else:
            try:
                ts = parse_timestamp(ts_text)
            except ValueError:
                return None
        if kind <= 1:
            if label_text:
                return None
            if kind == 0:
                if node.cpu is not None:
                    return None
                node.cpu = (value, ts, None)
            else:
                if node.memory_timestamp_ms is not None:
                    return None
                node.memory_bytes = value
                node.memory_timestamp_ms = ts
            continue
        key = label_keys.get(label_text)
        if key is None:
            key = _label_key(label_text, label_keys)
            if key is None:
                return None
        ns, pod, container = key
        if not (ns and pod) or (kind >= 4 and not container):
            return None
        seen_key = (kind, key)
        if seen_key in seen:
            return None
        seen.add(seen_key)
        if kind <= 3:
            pod_key = (ns, pod)
            usage = pods.get(pod_key)
            if usage is None:
                usage = pods[pod_key] = Usage()
        elif kind == 6:
            starts[key] = value
            continue
        else:
            usage = containers.get(key)
            if usage is None:
                usage = containers[key] = Usage()
        if kind in (2, 4):
            usage.cpu = (value, ts, None)
        else:
            usage.memory_bytes = value
            usage.memory_timestamp_ms = ts
    for key, start in starts.items():
        usage = containers.get(key)
        if usage is not None and usage.cpu is not None:
            cpu = usage.cpu
            usage.cpu = (cpu[0], cpu[1], start)
    return out


@dataclass(frozen=True, slots=True)
class ResourceLayout:
    """Where the numbers of one node's response lie among its values, learned from a
    response read line by line (:func:`decode_resource`): the next response whose text
    between the values has the same fingerprint is read by position, without a look at its
    lines, names or labels.

    Each entry gives indexes into the response's values (-1: none): the node's CPU and
    memory, each pod's, each container's CPU, memory and start time.
    """

    fingerprint: int
    node: tuple[int, int]
    pods: tuple[tuple[PodKey, int, int], ...]
    containers: tuple[tuple[ContainerKey, int, int, int], ...]


# The end of a sample line as the kubelet writes it: value and timestamp (which its
# scrape_error line has not), each as the plain layout of tsdb.exposition takes them (a
# timestamp short enough to be an int64 by its length). Possessive: no backtracking.
_VALUE_AND_STAMP = re.compile(r" ([0-9][0-9.eE+-]*+)(?: ([0-9]{1,18}+))?$", re.M)


def decode_resource(
    text: str, scrape_time_ms: int, label_keys: LabelKeys, layout: ResourceLayout | None
) -> tuple[NodeResources | None, ResourceLayout | None]:
    """:func:`decode_resource_text`, and the layout to read the node's next response with.

    A response laid out as ``layout`` says is read by position: the same result as
    :func:`decode_resource_text` gives, at under half its cost. Otherwise it is read line by
    line, and its layout learned (None when it has none: a comment that ends as a sample
    does, a timestamp of 19 digits).
    """
    parts = _VALUE_AND_STAMP.split(text)
    if layout is not None:
        read = _by_layout(parts, layout, scrape_time_ms)
        if read is not None:
            return read, layout
    lines = plain_sample_lines(text)
    if lines is None:
        return None, None
    resources = _decode_lines(lines, scrape_time_ms, label_keys)
    if resources is None:
        return None, None
    return resources, _learn(parts, lines, label_keys)


def _by_layout(
    parts: list[Any], layout: ResourceLayout, scrape_time_ms: int
) -> NodeResources | None:
    """The response split into ``parts`` read by ``layout``; None when it does not fit.

    ``parts`` are what :data:`_VALUE_AND_STAMP` splits: texts, and None for each line
    without a timestamp."""
    between = "".join(parts[0::3]).encode("utf-8", "surrogatepass")
    if layout_fingerprint(between, len(parts) // 3) != layout.fingerprint:
        return None
    try:
        values = list(map(float, parts[1::3]))
    except ValueError:
        return None  # "1e", say: the line by line read names the fault
    if math.inf in values:
        return None
    stamps = [scrape_time_ms if ts is None else int(ts) for ts in parts[2::3]]
    out = NodeResources()
    cpu, memory = layout.node
    if cpu >= 0:
        out.node.cpu = (values[cpu], stamps[cpu], None)
    if memory >= 0:
        out.node.memory_bytes, out.node.memory_timestamp_ms = values[memory], stamps[memory]
    pods = out.pods
    for pod, cpu, memory in layout.pods:
        usage = pods[pod] = Usage()
        if cpu >= 0:
            usage.cpu = (values[cpu], stamps[cpu], None)
        if memory >= 0:
            usage.memory_bytes, usage.memory_timestamp_ms = values[memory], stamps[memory]
    containers = out.containers
    for key, cpu, memory, start in layout.containers:
        usage = containers[key] = Usage()
        if cpu >= 0:
            usage.cpu = (values[cpu], stamps[cpu], values[start] if start >= 0 else None)
        if memory >= 0:
            usage.memory_bytes, usage.memory_timestamp_ms = values[memory], stamps[memory]
    return out


def _learn(
    parts: list[Any], lines: list[tuple[str, str, str, str]], label_keys: LabelKeys
) -> ResourceLayout | None:
    """The layout of a response that :func:`_decode_lines` read from ``lines``, split into
    ``parts`` by :data:`_VALUE_AND_STAMP`; None unless every cut is a sample line's end."""
    if len(parts) // 3 != len(lines):
        return None
    node = [-1, -1]
    pods: dict[PodKey, list[int]] = {}
    containers: dict[ContainerKey, list[int]] = {}
    starts: dict[ContainerKey, int] = {}
    for k, (name, label_text, value_text, ts_text) in enumerate(lines):
        head = parts[3 * k]
        line_head = head[head.rfind("\n") + 1 :]
        expected = f"{name}{{{label_text}}}" if label_text or line_head.endswith("}") else name
        if (parts[3 * k + 1], parts[3 * k + 2] or "", line_head) != (value_text, ts_text, expected):
            return None  # a cut elsewhere than this sample's end (a comment's, say)
        kind = _KINDS.get(name)
        if kind is None:
            continue
        if kind <= 1:
            node[kind] = k
            continue
        key = label_keys.get(label_text)
        if key is None:
            return None
        if kind <= 3:
            pods.setdefault(key[:2], [-1, -1])[kind - 2] = k
        elif kind == 6:
            starts[key] = k
        else:
            containers.setdefault(key, [-1, -1])[kind - 4] = k
    between = "".join(parts[0::3]).encode("utf-8", "surrogatepass")
    return ResourceLayout(
        layout_fingerprint(between, len(lines)),
        (node[0], node[1]),
        tuple((key, cpu, memory) for key, (cpu, memory) in pods.items()),
        tuple(
            (key, cpu, memory, starts.get(key, -1) if cpu >= 0 else -1)
            for key, (cpu, memory) in containers.items()
        ),
    )


def cpu_rate(prev: CpuPoint | None, last: CpuPoint, resolution_s: float) -> float | None:
    """CPU cores used between two points of one life, or None when no honest rate exists."""
    if prev is None:
        return _fresh_rate(last, resolution_s)
    prev_seconds, prev_ms, prev_start = prev
    seconds, ms, start = last
    if start is not None and prev_start is not None and start > prev_start:
        return _fresh_rate(last, resolution_s)  # restarted
    if ms <= prev_ms or seconds < prev_seconds:
        return None
    return (seconds - prev_seconds) * 1000 / (ms - prev_ms)


def _fresh_rate(last: CpuPoint, resolution_s: float) -> float | None:
    seconds, ms, start = last
    if start is None:
        return None
    life = ms / 1000 - start
    if FRESH_CONTAINER_MIN_SECONDS <= life < resolution_s:
        return seconds / life
    return None


class RateTracker:
    """Remembers the last CPU point of every node, pod and container to turn counters into rates.

    A point replaces the stored one only when it is newer, so a repeated scrape of an unchanged
    kubelet cache neither loses the rate nor produces a zero one.
    """

    def __init__(self, resolution_s: float) -> None:
        self.resolution_s = resolution_s
        self._last: dict[object, CpuPoint] = {}

    def update(self, key: object, point: CpuPoint) -> float | None:
        """The rate since the previous point of ``key``, remembering ``point``."""
        prev = self._last.get(key)
        rate = cpu_rate(prev, point, self.resolution_s)
        if (
            prev is None
            or point[1] > prev[1]
            or (point[2] is not None and prev[2] is not None and point[2] > prev[2])
        ):
            self._last[key] = point
        return rate

    def forget(self, keys: set[object]) -> None:
        """Drop state of things that no longer exist."""
        for key in keys:
            self._last.pop(key, None)

    def keys(self) -> set[object]:
        return set(self._last)
