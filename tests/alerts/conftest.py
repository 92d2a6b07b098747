"""External material of the alert tests (Prometheus' rule files and promtool fixtures),
reached through ``tests/support/external.py`` like every external suite."""

from __future__ import annotations

from pathlib import Path

from tests.support.external import data_root, require_data

DATA = data_root()


def require(path: Path) -> Path:
    """``path`` inside ``DATA``; skips the test (fails it under ``CI=true``) when absent."""
    return require_data(path.relative_to(DATA).as_posix())
