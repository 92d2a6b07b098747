"""Rule groups and rules as loaded from rule files (immutable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

RuleKind = Literal["alert", "record"]


@dataclass(frozen=True)
class RuleSpec:
    """One ``alert`` or ``record`` rule, with where it was written."""

    kind: RuleKind
    name: str
    expr: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class GroupSpec:
    """A rule group: evaluated every ``interval_ms`` (``None``: the global interval)."""

    name: str
    file: str
    rules: tuple[RuleSpec, ...]
    interval_ms: int | None = None
    query_offset_ms: int | None = None
    limit: int = 0
    labels: tuple[tuple[str, str], ...] = field(default=())

    @property
    def key(self) -> str:
        """Prometheus' group key: ``file;name``."""
        return f"{self.file};{self.name}"
