"""foresight's built-in alerting rules (``rules.yaml`` beside this module).

They are evaluated unless ``rules.builtin`` is off; ``rules.disabled_builtin`` drops some by
name, and an alerting rule of the same name in the operator's rule files replaces one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

from alerts.rules.loader import load_text
from alerts.rules.model import GroupSpec

RULES_FILE = Path(__file__).with_name("rules.yaml")
# A stable name, so that persisted alert state does not depend on where foresight is installed.
SOURCE = "<builtin>/rules.yaml"


def builtin_groups(disabled: Collection[str], user: Sequence[GroupSpec]) -> list[GroupSpec]:
    """The built-in groups without disabled rules and rules the user's files define."""
    overridden = {r.name for g in user for r in g.rules if r.kind == "alert"}
    drop = set(disabled) | overridden
    out = []
    for g in load_text(RULES_FILE.read_text(encoding="utf-8"), SOURCE):
        rules = tuple(r for r in g.rules if r.kind != "alert" or r.name not in drop)
        if rules:
            out.append(replace(g, rules=rules))
    return out


def builtin_names() -> list[str]:
    """Names of every built-in alerting rule."""
    groups = load_text(RULES_FILE.read_text(encoding="utf-8"), SOURCE)
    return [r.name for g in groups for r in g.rules if r.kind == "alert"]
