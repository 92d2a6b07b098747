"""Structural checks of dashboard JSON: what Grafana would silently render wrong.

Each problem names the dashboard, the panel and what is wrong, e.g.
``foresight-cost.json: panel 7 "Idle share": target B: expr does not parse: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import promql_parser

from dashboards.core import DATASOURCE, GRID_WIDTH, Json

# React panels that Grafana 11 and 12 ship; Graph, SingleStat, Table-old... are Angular.
PANEL_TYPES = frozenset(
    {"timeseries", "stat", "gauge", "bargauge", "table", "piechart", "state-timeline", "text"}
)
MIN_SCHEMA_VERSION = 36  # data sources as objects
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?:[:.][^}]*)?\}|([A-Za-z_]\w*))")
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$", re.DOTALL)
# Values of Grafana's built-in variables for the parse check: durations where they go.
BUILTIN_SAMPLE = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}


def variables_in(text: str) -> set[str]:
    """Names of the template variables ``text`` refers to (``$x``, ``${x}``, ``${x:fmt}``)."""
    return {a or b for a, b in _VARIABLE.findall(text)}


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each variable replaced by its value (unknown names stay as they are)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return _VARIABLE.sub(one, text)


def panels(dashboard: Json) -> Iterator[Json]:
    """Every panel, including those inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def problems(name: str, dashboard: Json) -> list[str]:
    """Everything wrong with one dashboard; empty when it is fine."""
    found: list[str] = []
    if dashboard.get("schemaVersion", 0) < MIN_SCHEMA_VERSION:
        found.append(f"schemaVersion {dashboard.get('schemaVersion')} < {MIN_SCHEMA_VERSION}")
    if not dashboard.get("uid"):
        found.append("no uid")
    defined = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    if "datasource" not in defined:
        found.append("no datasource variable")
    samples = {**BUILTIN_SAMPLE, **dict.fromkeys(defined, "x")}
    used: set[str] = set()
    for variable in dashboard.get("templating", {}).get("list", []):
        found += _variable_problems(variable, samples)
        used |= variables_in(str(variable.get("definition", "")))
    seen: dict[int, str] = {}
    boxes: list[tuple[str, Json]] = []
    for panel in panels(dashboard):
        where = f'panel {panel.get("id")} "{panel.get("title", "")}"'
        if panel.get("id") in seen:
            found.append(f"{where}: id also used by {seen[panel['id']]}")
        seen[panel.get("id", -1)] = where
        found += _grid_problems(where, panel.get("gridPos") or {})
        boxes.append((where, panel.get("gridPos") or {}))
        used |= variables_in(panel.get("title", "")) | variables_in(str(panel.get("links", "")))
        used |= variables_in(str(panel.get("fieldConfig", {}).get("overrides", "")))
        if panel.get("type") == "row":
            continue
        found += _panel_problems(where, panel, samples)
        for target in panel.get("targets", []):
            used |= variables_in(target.get("expr", ""))
    found += _overlaps(boxes)
    unknown = sorted(v for v in used if not v.startswith("__") and v not in defined)
    found += [f"variable ${v} is used but not defined" for v in unknown]
    return [f"{name}: {p}" for p in found]


def _panel_problems(where: str, panel: Json, samples: Mapping[str, str]) -> list[str]:
    found = []
    kind = panel.get("type")
    if kind not in PANEL_TYPES:
        found.append(f"{where}: panel type {kind!r} is not a React panel ({sorted(PANEL_TYPES)})")
    if panel.get("datasource") != DATASOURCE:
        found.append(f"{where}: datasource is {panel.get('datasource')!r}, not {DATASOURCE}")
    if kind != "text":
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if not unit:
            found.append(f"{where}: no unit")
        if not panel.get("targets"):
            found.append(f"{where}: no query")
        if not panel.get("description"):
            found.append(f"{where}: no description")
    for target in panel.get("targets", []):
        ref = f"{where}: target {target.get('refId')}"
        if target.get("datasource") != DATASOURCE:
            found.append(f"{ref}: datasource is {target.get('datasource')!r}")
        error = parse_error(fill(target.get("expr", ""), samples))
        if error:
            found.append(f"{ref}: expr does not parse: {error}")
    return found


def parse_error(expr: str) -> str | None:
    """promql-parser's message for ``expr``, or ``None`` when it parses."""
    if not expr.strip():
        return "empty"
    try:
        promql_parser.parse(expr)
    except Exception as e:  # the parser raises plain ValueError/Exception subclasses
        return str(e).splitlines()[0][:200]
    return None


def _variable_problems(variable: Json, samples: Mapping[str, str]) -> list[str]:
    if variable.get("type") != "query":
        return []
    where = f"variable ${variable['name']}"
    if variable.get("datasource") != DATASOURCE:
        return [f"{where}: datasource is {variable.get('datasource')!r}"]
    definition = str(variable.get("definition", ""))
    match = _LABEL_VALUES.match(definition)
    if match is None:
        return [f"{where}: query {definition!r} is not label_values(selector, label)"]
    error = parse_error(fill(match.group(1), samples))
    return [f"{where}: selector does not parse: {error}"] if error else []


def _grid_problems(where: str, pos: Mapping[str, Any]) -> list[str]:
    x, y, w, h = (pos.get(k) for k in ("x", "y", "w", "h"))
    if not all(isinstance(v, int) for v in (x, y, w, h)):
        return [f"{where}: gridPos {dict(pos)} is incomplete"]
    assert isinstance(x, int) and isinstance(w, int) and isinstance(h, int)
    if x < 0 or w <= 0 or h <= 0 or x + w > GRID_WIDTH:
        return [f"{where}: gridPos x={x} w={w} is outside {GRID_WIDTH} columns"]
    return []


def _overlaps(boxes: list[tuple[str, Json]]) -> list[str]:
    found = []
    for i, (a_name, a) in enumerate(boxes):
        for b_name, b in boxes[i + 1 :]:
            try:
                apart = (
                    a["x"] + a["w"] <= b["x"]
                    or b["x"] + b["w"] <= a["x"]
                    or a["y"] + a["h"] <= b["y"]
                    or b["y"] + b["h"] <= a["y"]
                )
            except (KeyError, TypeError):
                continue
            if not apart:
                found.append(f"{a_name} overlaps {b_name}")
    return found
