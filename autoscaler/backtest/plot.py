"""``--plot``: demand, capacity per policy, foresight's forecast and its violations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from autoscaler.backtest.run import TraceResult

__all__ = ["PlotsUnavailable", "plot_trace", "pyplot"]

# Long replays are shown over their last days only: a month at 15 s is unreadable.
_MAX_POINTS = 4 * 5760


class PlotsUnavailable(RuntimeError):
    """matplotlib, an optional extra, is not installed."""


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or :class:`PlotsUnavailable` naming
    the extra to install (the container image leaves plots out)."""
    try:
        import matplotlib  # noqa: PLC0415 (heavy, and only plots need it)
    except ImportError as e:
        raise PlotsUnavailable(
            "plots need matplotlib: pip install 'foresight[plots]' (image: make image-demo)"
        ) from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def plot_trace(result: TraceResult, path: Path, focus: str = "foresight") -> None:
    """Write a PNG of one trace's replay to ``path``."""
    plt = pyplot()

    world = result.world
    step = world.config.step_seconds
    demand = world.replay_demand
    start = max(0, len(demand) - _MAX_POINTS)
    hours = (np.arange(start, len(demand)) * step) / 3600.0
    fig, ax = plt.subplots(figsize=(14, 5))
    ax.plot(hours, demand[start:], color="black", linewidth=0.8, label="demand")
    for name, run in result.replays.items():
        capacity = run.ready[start:] * run.capacity
        ax.step(hours, capacity, where="post", linewidth=0.8, label=f"capacity {name}")
    if focus in result.forecasts:
        band = result.forecasts[focus][start : len(demand)]
        ax.fill_between(
            hours[: len(band)],
            demand[start : start + len(band)],
            np.maximum(band, demand[start : start + len(band)]),
            color="tab:blue",
            alpha=0.15,
            label=f"{focus} forecast peak (quantile)",
        )
    if focus in result.replays:
        run = result.replays[focus]
        bad = np.flatnonzero(run.demand[start:] > run.ready[start:] * run.capacity)
        ax.scatter(hours[bad], demand[start:][bad], color="red", s=8, label=f"{focus} violations")
    ax.set_xlabel("hours since replay start")
    ax.set_ylabel("load")
    ax.set_title(f"{world.name}: startup {world.config.startup_seconds:.0f} s")
    ax.legend(loc="upper left", fontsize=7, ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
