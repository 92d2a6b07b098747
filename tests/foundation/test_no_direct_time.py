"""Nothing outside the clock module reads the system time directly."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = [
    "runtime",
    "tsdb",
    "promql",
    "collectors",
    "alerts",
    "access",
    "queryapi",
    "remotewrite",
    "autoscaler",
    "dashboards",
    "simulator",
]
ALLOWED = {REPO / "runtime" / "clock.py"}
FORBIDDEN = {
    ("time", "time"),
    ("time", "time_ns"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
}


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in FORBIDDEN
        ):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value.id}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            for alias in node.names:
                if alias.name in {"time", "time_ns"}:
                    found.append(
                        f"{path.relative_to(REPO)}:{node.lineno}: from time import {alias.name}"
                    )
    return found


def test_only_the_clock_reads_the_time() -> None:
    offences = [
        o
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        if path not in ALLOWED
        for o in _offences(path)
    ]
    assert offences == [], "use the injected Clock instead:\n" + "\n".join(offences)
