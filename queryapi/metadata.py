"""Metric metadata for ``/api/v1/metadata``: type, help and unit per metric name.

Prometheus learns metadata from the targets it scrapes; foresight knows it for the families it
exports on ``/metrics`` (:func:`registry_metadata`), which are also the names its store holds.
A counter is listed under its sample name (``..._total``), the name a query uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry

from runtime.families import expanded

Entry = dict[str, str]
Metadata = Mapping[str, list[Entry]]
MetadataSource = Callable[[], Metadata]


def no_metadata() -> Metadata:
    """A source that knows no metric."""
    return {}


def registry_metadata(registry: CollectorRegistry) -> MetadataSource:
    """Metadata of every family ``registry`` collects, read when asked for."""

    def read() -> Metadata:
        out: dict[str, list[Entry]] = {}
        for metric in expanded(registry.collect()):
            name = metric.name + "_total" if metric.type == "counter" else metric.name
            entry = {"type": metric.type, "help": metric.documentation, "unit": metric.unit}
            entries = out.setdefault(name, [])
            if entry not in entries:
                entries.append(entry)
        return out

    return read


def select_metadata(
    metadata: Metadata, metric: str = "", limit: int = -1, per_metric: int = -1
) -> dict[str, list[Entry]]:
    """What ``/metadata`` answers: one metric or all, at most ``limit`` metrics and
    ``per_metric`` entries each (negative: no limit; ``limit=0`` answers nothing, as in
    Prometheus)."""
    out: dict[str, list[Entry]] = {}
    for name, entries in metadata.items():
        if metric and name != metric:
            continue
        if 0 <= limit <= len(out):
            break
        out[name] = list(entries[:per_metric] if per_metric > 0 else entries)
    return out
