"""``report.png``: per scaled workload, load, the forecast peak and replicas over the day."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from autoscaler.backtest.plot import pyplot

__all__ = ["plot_report"]


class Tracked(Protocol):
    namespace: str
    name: str
    request: float
    demand: list[float]
    replicas: list[int]
    ready: list[int]
    forecast: list[float]


def plot_report(tracks: list[Tracked], step: float, path: Path) -> None:
    """One panel per workload: load, forecast band, requested capacity and replicas."""
    plt = pyplot()

    fig, axes = plt.subplots(len(tracks), 1, figsize=(14, 4.5 * len(tracks)), squeeze=False)
    for ax, t in zip(axes[:, 0], tracks, strict=True):
        hours = np.arange(len(t.demand)) * step / 3600.0
        demand = np.asarray(t.demand)
        forecast = np.asarray(t.forecast, dtype=np.float64)
        ax.plot(hours, demand, color="black", linewidth=0.8, label="load (cores)")
        ax.fill_between(
            hours,
            demand,
            np.fmax(forecast, demand),
            color="tab:blue",
            alpha=0.2,
            label="forecast peak (quantile band)",
        )
        capacity = np.asarray(t.ready) * t.request
        ax.step(
            hours,
            capacity,
            where="post",
            color="tab:green",
            linewidth=0.9,
            label="requested by ready pods",
        )
        bad = np.flatnonzero(demand > capacity)
        ax.scatter(hours[bad], demand[bad], color="red", s=6, label="SLO violation")
        ax.set_ylabel("cores")
        ax.set_title(f"{t.namespace}/{t.name}")
        right = ax.twinx()
        right.step(
            hours, t.replicas, where="post", color="tab:orange", linewidth=0.8, label="replicas"
        )
        right.set_ylabel("replicas")
        lines, labels = ax.get_legend_handles_labels()
        more, more_labels = right.get_legend_handles_labels()
        ax.legend(lines + more, labels + more_labels, loc="upper left", fontsize=7, ncols=3)
    axes[-1, 0].set_xlabel("hours since the demo started")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
