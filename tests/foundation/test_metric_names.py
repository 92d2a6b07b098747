"""Metric names live in one module, and every name there is exported or stored.

``runtime/names.py`` spells every ``foresight_`` name; everywhere else, production code uses
its constants (the dashboards build their PromQL from them). A name there that nothing
exports on ``/metrics`` and nothing writes to the store is dead and goes.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from alerts.metrics import Sources, alert_families
from alerts.notify.outbox import Outbox
from alerts.notify.silences import Silences
from autoscaler.backfill.metrics import backfill_families
from autoscaler.controller.controller import autoscaler_families
from autoscaler.cost.exporter import cost_families
from autoscaler.cost.model import Snapshot
from autoscaler.cost.settings import CostSettings
from autoscaler.service import leader_family
from collectors.cluster import WatchHealth
from collectors.cluster_model import ClusterModel
from collectors.kubelet import SERIES_WRITTEN
from collectors.scrape import ScrapeHealth
from collectors.state_metrics import cluster_families, health_families, usage_families
from remotewrite.service import RemoteWrite
from remotewrite.settings import RemoteWriteSettings
from runtime import names
from runtime.clock import VirtualClock
from runtime.families import Family
from tsdb import Store, StoreSettings

REPO = Path(__file__).resolve().parents[2]
_PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# Every production package, as the distribution lists them.
PACKAGES = [
    p.removesuffix("*") for p in _PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
]
NAMES_MODULE = REPO / "runtime" / "names.py"
# A metric name inside a string: not part of a longer identifier (``_foresight_replay``).
METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_])foresight_[a-z]")


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring constants: prose may name a metric."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                found.add(id(body[0].value))
    return found


def _metric_literals(source: str) -> list[tuple[int, int, str]]:
    """(line, column, text) of every string naming a metric, docstrings aside."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    # f-string parts are Constant nodes too, so ast.walk sees them.
    return sorted(
        (node.lineno, node.col_offset + 1, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and METRIC_NAME.search(node.value)
    )


def test_no_metric_name_is_spelled_outside_the_names_module() -> None:
    offences = [
        f"{path.relative_to(REPO)}:{line}:{column}: {text!r}"
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        if path != NAMES_MODULE
        for line, column, text in _metric_literals(path.read_text(encoding="utf-8"))
    ]
    assert offences == [], "use a constant of runtime/names.py:\n" + "\n".join(offences)


def test_the_guard_sees_plain_strings_and_f_string_parts() -> None:
    source = (
        '"""Docstrings may name foresight_leader."""\n'
        'a = "foresight_leader"\n'
        "b = f\"sum({'x'}) + foresight_store_series{{job={a}}}\"\n"
        'c = "label_values(foresight_node_info, cluster)"\n'
        "def _foresight_replay() -> str:\n"
        '    return "not a name: _foresight_x, FORESIGHT_X"\n'
    )
    assert [text for _, _, text in _metric_literals(source)] == [
        "foresight_leader",
        ") + foresight_store_series{job=",
        "label_values(foresight_node_info, cluster)",
    ]


def _every_family(tmp_path: Path) -> list[Family]:
    """What each family builder gives for an empty cluster: families exist without samples."""
    clock = VirtualClock(1_700_000_000.0)
    store = Store(StoreSettings(), clock, persistent=False)
    outbox = Outbox(tmp_path)
    try:
        sources = Sources([], {}, outbox, ["hook"], Silences(tmp_path, 1), True, 0)
        return [
            *usage_families({}, ClusterModel()),
            *cluster_families(ClusterModel()),
            *health_families([ScrapeHealth("kubelet")], WatchHealth(), store.stats()),
            *autoscaler_families([], {}),
            *alert_families(sources),
            *cost_families(Snapshot((), ()), CostSettings()),
            leader_family("replica-a", True),
            *backfill_families({}, {}, 0),
            *RemoteWrite(
                [RemoteWriteSettings(url="http://127.0.0.1:1/api/v1/write")], tmp_path, clock
            ).families(),
        ]
    finally:
        outbox.close()
        store.close()


def test_every_name_is_exported_or_stored(tmp_path: Path) -> None:
    declared = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
    exported = {f.sample_name for f in _every_family(tmp_path)}
    # Whatever is recorded to the store is an exported family, or written by the kubelet
    # collector itself.
    produced = exported | SERIES_WRITTEN
    assert sorted(declared - produced) == [], "names nothing exports or stores"
    assert sorted(produced - declared) == [], "names missing from runtime/names.py"
