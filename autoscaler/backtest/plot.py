"""``--plot``: demand, capacity per policy, foresight's forecast and its violations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autoscaler.backtest.run import TraceResult

if TYPE_CHECKING:
    from autoscaler.backtest.frontier import Frontier

__all__ = ["PlotsUnavailable", "plot_frontier", "plot_trace", "pyplot"]

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


def plot_frontier(frontier: Frontier, path: Path) -> None:
    """Write a PNG of violations against cost, one curve per policy, each point labelled
    with its knob value; down and to the left is better."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(10, 6))
    for family in frontier.families():
        curve = frontier.curve(family)
        costs = [p.aggregate.cost_vs_oracle for p in curve]
        violations = [p.aggregate.violation_pct for p in curve]
        (line,) = ax.plot(costs, violations, marker="o", linewidth=1.2, label=family)
        for p, x, y in zip(curve, costs, violations, strict=True):
            ax.annotate(
                f"{p.point.value:g}",
                (x, y),
                textcoords="offset points",
                xytext=(3, 3),
                fontsize=6,
                color=line.get_color(),
            )
    ax.set_xscale("log")
    # Violations span orders of magnitude and reach 0: linear near 0, logarithmic above.
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(bottom=0)
    plain = plt.FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.set_xlabel("cost vs oracle (geometric mean)")
    ax.set_ylabel("violating steps % (mean)")
    ax.set_title(
        f"frontiers over {len(frontier.traces)} trace(s): quantile (foresight) or target "
        "(reference policies)"
    )
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
