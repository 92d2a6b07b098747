"""Shared test material of the alert tests."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def require(path: Path) -> Path:
    """The path, or a clear failure naming what is missing."""
    if not path.exists():
        raise FileNotFoundError(f"alert test material not found at {path} (shared/data)")
    return path
