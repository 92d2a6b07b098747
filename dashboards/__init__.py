"""Grafana dashboards as code and the cost model's queries.

:func:`build_all` returns every dashboard as Grafana 11 JSON, keyed by file name; the CLI
(``foresight dashboards``), the demo and the Helm chart's ConfigMaps all use it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grafanalib.core as g

from dashboards import alerts, autoscaler, cluster, cost, nodes, workloads
from dashboards.core import Json
from dashboards.modern import modernise

Builder = Callable[[str], g.Dashboard]

# Dashboards by name, in the order people read them: overview first, then drill-downs.
DASHBOARDS: dict[str, Builder] = {
    "cluster": lambda currency: cluster.build(),
    "nodes": lambda currency: nodes.build(),
    "workloads": lambda currency: workloads.build(),
    "autoscaler": lambda currency: autoscaler.build(),
    "alerts": lambda currency: alerts.build(),
    "cost": cost.build,
}


class UnknownDashboard(KeyError):
    """A dashboard name that is not registered; the message lists the valid ones."""

    def __str__(self) -> str:
        return str(self.args[0])


def file_name(name: str) -> str:
    """``foresight-<name>.json``, also the dashboard's uid plus ``.json``."""
    return f"foresight-{name}.json"


def build(name: str, currency: str = "USD") -> Json:
    """One dashboard as Grafana JSON."""
    try:
        builder = DASHBOARDS[name]
    except KeyError:
        raise UnknownDashboard(
            f"unknown dashboard {name!r} (valid: {', '.join(DASHBOARDS)})"
        ) from None
    return modernise(builder(currency))


def build_all(currency: str = "USD") -> dict[str, Json]:
    """Every dashboard as Grafana JSON, keyed by file name."""
    return {file_name(name): build(name, currency) for name in DASHBOARDS}


def write_all(directory: Path, currency: str = "USD") -> list[Path]:
    """Write every dashboard to ``directory`` (created if needed); returns the files."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in build_all(currency).items():
        path = directory / name
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


__all__ = ["DASHBOARDS", "UnknownDashboard", "build", "build_all", "file_name", "write_all"]
