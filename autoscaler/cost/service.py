"""A cost report from any series source: read the window, build snapshots, summarise."""

from __future__ import annotations

from autoscaler.cost.inputs import snapshot_from_series
from autoscaler.cost.report import GroupBy, Moment, Report, summarise
from autoscaler.cost.settings import CostSettings
from autoscaler.cost.sources import SeriesSource
from runtime import names


def default_step(window_s: float) -> float:
    """About 300 points over the window, at least 15 s and at most one hour apart."""
    return min(3600.0, max(15.0, window_s / 300))


async def load_report(
    source: SeriesSource,
    by: GroupBy,
    end_s: float,
    window_s: float,
    settings: CostSettings,
    step_s: float | None = None,
) -> Report:
    """The cost of ``[end - window, end]``, averaged over the moments that have data.

    The report's window is the time the data covers (moments × step), so that a cluster
    younger than the window is not billed for time it did not exist.
    """
    step = step_s or default_step(window_s)
    moments = [
        Moment(*snapshot_from_series(series, settings))
        for series in await source.moments(end_s - window_s, end_s, step)
        if series.get(names.NODE_CAPACITY)
    ]
    covered = min(window_s, len(moments) * step) / 3600
    return summarise(moments, by, covered, settings)
