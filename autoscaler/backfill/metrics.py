"""``foresight_history_backfill_*``: what the back-fill copied, asked and still has to do."""

from __future__ import annotations

from collections.abc import Mapping

from autoscaler.backfill.mapping import BackfillTarget
from runtime import names
from runtime.families import Family

__all__ = ["backfill_families"]


def backfill_families(
    samples: Mapping[BackfillTarget, int], queries: Mapping[str, int], pending: int
) -> list[Family]:
    """Samples copied per workload series, range queries by result (``ok``, ``error``), and
    the series whose back-fill is not done."""
    copied = Family(
        names.HISTORY_BACKFILL_SAMPLES,
        "counter",
        "Samples copied from Prometheus into the store, per workload series.",
    )
    asked = Family(
        names.HISTORY_BACKFILL_QUERIES,
        "counter",
        "Range queries of the back-fill, by result (ok, error).",
    )
    waiting = Family(
        names.HISTORY_BACKFILL_PENDING,
        "gauge",
        "Workload series whose back-fill is queued, running or waiting to retry.",
    )
    for target in sorted(samples, key=str):
        copied.add(
            samples[target],
            namespace=target.namespace,
            workload_kind=target.kind,
            workload=target.workload,
            resource=target.resource,
        )
    for result, count in sorted(queries.items()):
        asked.add(count, result=result)
    waiting.add(pending)
    return [copied, asked, waiting]
