"""Metric families: the one model of what foresight exports, and its rendering.

Every family foresight exports on ``/metrics`` or writes to its store is a :class:`Family`
(name, kind, help, samples). The exporter shows families through prometheus-client
(:class:`FamiliesCollector`; the registry is a parameter, each test builds its own), and the
store recorder (:mod:`tsdb.recorder`) writes the same families, so a rule reads what
Prometheus scrapes.

A large cluster puts hundreds of thousands of samples on ``/metrics``. Building one
prometheus-client sample object per sample and formatting it costs seconds there, so the
families render their own text in bulk (:func:`render_families`) and :func:`exposition` uses
that text for them; other collectors in the registry go through prometheus-client as usual.
The bytes are the same as ``generate_latest`` gives (a test holds them equal), and
``registry.get_sample_value`` still works: the sample objects are built when asked for.

:func:`exposition_async` is what a server on the event loop calls: the collectors run on the
loop (they read live state that only the loop changes), and the text, the costly part at
hundreds of thousands of samples, is rendered in a worker thread from what they returned.
Families that are costly to build (a cluster's usage, state and cost: seconds at 1,000 nodes)
come as :class:`Deferred`: the loop hands over a snapshot it took, and the families are built
from it in the rendering thread, where they live only as long as the text takes.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from runtime.forked import ForkedWorkFailed, forking_works, run_forked
from runtime.gcpause import paused_gc

__all__ = [
    "CONTENT_TYPE",
    "Deferred",
    "FamiliesCollector",
    "Family",
    "FamilyMetric",
    "Kind",
    "built",
    "expanded",
    "exposition",
    "exposition_async",
    "render_families",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

log = logging.getLogger(__name__)

Kind = Literal["gauge", "counter"]


@dataclass
class Family:
    """One metric family: samples are (labels, value); names come from :mod:`runtime.names`."""

    name: str
    kind: Kind
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float | None, **labels: str) -> None:
        """Add a sample; ``None`` (unknown) adds nothing."""
        if value is not None:
            self.samples.append((labels, float(value)))

    @property
    def sample_name(self) -> str:
        """The name of the samples, on ``/metrics`` and in the store: a counter's ends in
        ``_total``, as prometheus-client names it."""
        if self.kind == "counter":
            return self.name.removesuffix("_total") + "_total"
        return self.name


_NEEDS_ESCAPE = re.compile(r'[\\\n"]')
_MINUS_INF = float("-inf")


def _escape(value: str) -> str:
    if _NEEDS_ESCAPE.search(value) is None:
        return value
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _label_names(family: Family) -> list[str]:
    return sorted({k for labels, _ in family.samples for k in labels})


def _value(value: float) -> str:
    # floatToGoString changes only values from 1e6 up and the special ones; below, it is repr.
    if type(value) is float and _MINUS_INF < value < 1e6:  # false for NaN too
        return repr(value)
    text: str = floatToGoString(value)
    return text


# Rendered label sets of one exposition, by label names and then by the identity of the
# label dict: families that share a dict (a pod's CPU and memory) render it once.
_LabelTexts = dict[tuple[str, ...], dict[int, str]]


def _render(family: Family, out: list[str], texts: _LabelTexts) -> None:
    name = family.sample_name
    help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
    out.append(f"# HELP {name} {help_text}\n# TYPE {name} {family.kind}\n")
    names = tuple(_label_names(family))
    if not names:
        out.extend(f"{name} {_value(value)}\n" for _, value in family.samples)
        return
    template = "{" + ",".join(f'{n}="%s"' for n in names) + "} "
    rendered = texts.setdefault(names, {})
    append = out.append
    for labels, value in family.samples:
        text = rendered.get(id(labels))
        if text is None:
            values = tuple([labels.get(n, "") for n in names])
            if _NEEDS_ESCAPE.search("".join(values)) is not None:
                values = tuple([_escape(v) for v in values])
            text = rendered[id(labels)] = template % values
        append(name)
        append(text)
        append(_value(value))
        append("\n")


def render_families(families: Iterable[Family]) -> str:
    """The text exposition of ``families``, as ``generate_latest`` writes a
    :class:`FamiliesCollector` of them."""
    families = list(families)  # alive while rendering: label dicts are known by identity
    out: list[str] = []
    texts: _LabelTexts = {}
    for family in families:
        _render(family, out, texts)
    return "".join(out)


class FamilyMetric(Metric):
    """One family as a prometheus-client metric whose samples are built only when read."""

    def __init__(self, family: Family) -> None:
        # prometheus-client adds the _total suffix back on exposition.
        name = family.name.removesuffix("_total") if family.kind == "counter" else family.name
        super().__init__(name, family.help, family.kind)
        self.family = family

    @property
    def samples(self) -> list[Sample]:
        built: list[Sample] | None = self.__dict__.get("_samples")
        if built is None:
            names = _label_names(self.family)
            sample_name = self.family.sample_name
            built = [
                Sample(sample_name, {n: labels.get(n, "") for n in names}, value)
                for labels, value in self.family.samples
            ]
            self.__dict__["_samples"] = built
        return built

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        # Metric.__init__ assigns an empty list; anything assigned replaces the family's.
        if value:
            self.__dict__["_samples"] = value


@dataclass(frozen=True)
class Deferred:
    """Families that ``build`` makes when they are rendered, in the rendering thread: it must
    read only what it closed over (a snapshot), never state the event loop changes."""

    build: Callable[[], Sequence[Family]]


def built(items: Iterable[Family | Deferred]) -> list[Family]:
    """``items`` with every :class:`Deferred` built (costly: off the loop)."""
    out: list[Family] = []
    for item in items:
        if isinstance(item, Deferred):
            out.extend(item.build())
        else:
            out.append(item)
    return out


class _DeferredMetric(Metric):
    """Stands for a :class:`Deferred` among collected metrics until :func:`expanded`."""

    def __init__(self, deferred: Deferred) -> None:
        super().__init__("deferred", "", "untyped")
        self.deferred = deferred


def expanded(metrics: Iterable[Metric]) -> list[Metric]:
    """Collected metrics with every :class:`Deferred` built (costly: off the loop)."""
    out: list[Metric] = []
    for metric in metrics:
        if isinstance(metric, _DeferredMetric):
            out.extend(FamilyMetric(f) for f in metric.deferred.build())
        else:
            out.append(metric)
    return out


class FamiliesCollector(Collector):
    """Yields the families a provider computes, each time Prometheus scrapes. A
    :class:`Deferred` among them is built only by :func:`exposition`,
    :func:`exposition_async` or :func:`expanded`."""

    def __init__(self, provider: Callable[[], Sequence[Family | Deferred]]) -> None:
        self._provider = provider

    def collect(self) -> Iterator[Metric]:
        for item in self._provider():
            yield _DeferredMetric(item) if isinstance(item, Deferred) else FamilyMetric(item)


class _Metrics(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


def exposition(registry: CollectorRegistry) -> bytes:
    """``generate_latest(registry)``, with the families of :class:`FamiliesCollector`\\ s
    rendered in bulk."""
    with paused_gc():
        return _render_metrics(expanded(registry.collect()))


# A render in a child that takes longer is taken for one stuck on a lock some thread held at
# the fork (a Deferred must take none), and done again in a thread. 5,000 nodes render in
# about 25 s.
CHILD_DEADLINE_S = 120.0


async def exposition_async(
    registry: CollectorRegistry,
    *,
    in_child: bool = False,
    child_deadline_s: float = CHILD_DEADLINE_S,
) -> bytes | memoryview:
    """:func:`exposition` for a server on the event loop: collected on the loop, deferred
    families built and everything rendered in a worker thread, or with ``in_child`` in a
    forked child (:mod:`runtime.forked`), which holds no interpreter lock the loop needs; a
    child that fails, or gives no answer within ``child_deadline_s``, is logged and the text
    rendered in a thread instead."""
    with paused_gc():
        metrics = list(registry.collect())
    if in_child and forking_works():
        try:
            return await run_forked(
                partial(_render_metrics_in_child, metrics), deadline_s=child_deadline_s
            )
        except ForkedWorkFailed as e:
            log.warning("rendering /metrics in a child failed, rendering in a thread: %s", e)
    return await asyncio.to_thread(_rendered_apart, metrics)


def _render_metrics_in_child(metrics: list[Metric]) -> bytes:
    # The child's collector is off already; paused_gc's lock may be held by a thread that
    # does not exist in the child.
    return _render_metrics(expanded(metrics))


def _rendered_apart(metrics: list[Metric]) -> bytes:
    with paused_gc():
        return _render_metrics(expanded(metrics))


def _render_metrics(metrics: list[Metric]) -> bytes:
    """The exposition of collected metrics; ``metrics`` stays alive until the text is done
    (label dicts are known by identity)."""
    parts: list[str] = []
    others: list[Metric] = []
    texts: _LabelTexts = {}

    def flush() -> None:
        if others:
            parts.append(generate_latest(_Metrics(others)).decode("utf-8"))
            others.clear()

    for metric in metrics:
        if isinstance(metric, FamilyMetric) and "_samples" not in metric.__dict__:
            flush()
            _render(metric.family, parts, texts)
        else:
            others.append(metric)
    flush()
    return "".join(parts).encode("utf-8")
