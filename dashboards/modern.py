"""Turn grafanalib's output into JSON that current Grafana (10 to 12) reads as-is.

grafanalib 0.7.1 writes schemaVersion 12, data sources as strings, the Grafana 6 options of
gauges and bar gauges, and legacy keys (``rows``, ``span``, ``style``...). Here each of those
becomes what a dashboard saved by Grafana 11 contains, so Grafana runs no migration on load.
"""

from __future__ import annotations

import json
from typing import Any

import grafanalib.core as g
from grafanalib._gen import DashboardEncoder

from dashboards.core import DATASOURCE, Json

SCHEMA_VERSION = 39  # Grafana 11

_DASHBOARD_LEGACY = ("__inputs", "rows", "style", "hideControls", "sharedCrosshair", "gnetId")
_PANEL_LEGACY = (
    "span",
    "height",
    "minSpan",
    "error",
    "editable",
    "cacheTimeout",
    "hideTimeOverride",
    "columns",
    "fontSize",
    "color",
    "mappings",
    "thresholds",
)
_TARGET_KEEP = ("refId", "expr", "legendFormat", "format", "instant", "range", "datasource")
_VARIABLE_KEEP = (
    "name",
    "label",
    "type",
    "datasource",
    "query",
    "definition",
    "refresh",
    "regex",
    "sort",
    "multi",
    "includeAll",
    "allValue",
    "current",
    "options",
    "hide",
)


def modernise(dashboard: g.Dashboard) -> Json:
    """The dashboard as a JSON-able dict in Grafana 11's model."""
    data: Json = json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))
    for key in _DASHBOARD_LEGACY:
        data.pop(key, None)
    data["id"] = None
    data["schemaVersion"] = SCHEMA_VERSION
    data["version"] = 1
    data["fiscalYearStartMonth"] = 0
    data["liveNow"] = False
    data["weekStart"] = ""
    data["annotations"] = {"list": [_annotation()]}
    data["panels"] = [_panel(p) for p in data["panels"]]
    data["templating"] = {"list": [_variable(v) for v in data["templating"]["list"]]}
    data["timepicker"] = {}
    return data


def _annotation() -> Json:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def _panel(panel: Json) -> Json:
    kind = panel["type"]
    if kind == "row":
        return {
            "type": "row",
            "id": panel["id"],
            "title": panel["title"],
            "collapsed": panel.get("collapsed", False),
            "gridPos": panel["gridPos"],
            "panels": [_panel(p) for p in panel.get("panels", [])],
        }
    for key in _PANEL_LEGACY:
        panel.pop(key, None)
    panel["datasource"] = dict(DATASOURCE)
    panel["targets"] = [_target(t) for t in panel.get("targets", [])]
    if not panel.get("repeat"):
        for key in ("repeat", "repeatDirection", "maxPerRow"):
            panel.pop(key, None)
    fixer = _FIXERS.get(kind)
    if fixer is not None:
        fixer(panel)
    defaults = panel.setdefault("fieldConfig", {}).setdefault("defaults", {})
    panel["fieldConfig"].setdefault("overrides", [])
    thresholds = defaults.setdefault("thresholds", {"mode": "absolute", "steps": []})
    if not thresholds.get("steps"):
        thresholds["steps"] = [{"color": "green", "value": None}]
    for key in ("min", "max", "decimals", "title", "calcs", "limit", "override", "values"):
        if defaults.get(key) is None:
            defaults.pop(key, None)
    return {k: v for k, v in panel.items() if v is not None}


def _target(target: Json) -> Json:
    out = {k: target[k] for k in _TARGET_KEEP if k in target}
    out["datasource"] = dict(DATASOURCE)
    out["range"] = not target.get("instant", False)
    out["editorMode"] = "code"
    return out


def _stat(panel: Json) -> None:
    defaults = panel["fieldConfig"]["defaults"]
    defaults["color"] = {"mode": "thresholds"}
    defaults.pop("custom", None)
    options = panel["options"]
    options["wideLayout"] = True
    options["showPercentChange"] = False
    options["reduceOptions"]["fields"] = ""


def _gauge(panel: Json) -> None:
    old = panel["fieldConfig"]
    defaults = old["defaults"]
    panel["fieldConfig"] = {
        "defaults": {
            "unit": defaults.get("unit") or "none",
            "min": defaults.get("min"),
            "max": defaults.get("max"),
            "decimals": defaults.get("decimals"),
            "thresholds": defaults["thresholds"],
            "color": {"mode": "thresholds"},
            "mappings": [],
        },
        "overrides": [],
    }
    panel["options"] = {
        "reduceOptions": {"calcs": defaults.get("calcs", ["lastNotNull"]), "fields": ""},
        "orientation": "auto",
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
        "sizing": "auto",
    }
    panel["options"]["reduceOptions"]["values"] = False


def _bargauge(panel: Json) -> None:
    old: Json = panel["options"]
    field_options: Json = old["fieldOptions"]
    defaults: Json = field_options["defaults"]
    panel["fieldConfig"] = {
        "defaults": {
            "unit": defaults.get("unit") or "none",
            "min": defaults.get("min"),
            "max": defaults.get("max"),
            "decimals": defaults.get("decimals"),
            "thresholds": {"mode": "absolute", "steps": field_options["thresholds"]},
            "color": {"mode": "thresholds"},
            "mappings": [],
        },
        "overrides": [],
    }
    panel["options"] = {
        "displayMode": old["displayMode"],
        "orientation": old["orientation"],
        "reduceOptions": {"calcs": field_options["calcs"], "fields": "", "values": False},
        "showUnfilled": True,
        "valueMode": "color",
        "namePlacement": "auto",
        "sizing": "auto",
        "minVizHeight": 16,
        "minVizWidth": 8,
        "maxVizHeight": 300,
    }


def _table(panel: Json) -> None:
    defaults = panel["fieldConfig"]["defaults"]
    custom = defaults.setdefault("custom", {})
    custom.pop("displayMode", None)
    custom["cellOptions"] = {"type": "auto"}
    custom["inspect"] = False
    options = panel["options"]
    options["cellHeight"] = "sm"
    options["footer"] = {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""}


def _piechart(panel: Json) -> None:
    defaults = panel["fieldConfig"]["defaults"]
    defaults["custom"] = {"hideFrom": {"legend": False, "tooltip": False, "viz": False}}


def _state_timeline(panel: Json) -> None:
    panel["options"]["perPage"] = 20


def _timeseries(panel: Json) -> None:
    custom = panel["fieldConfig"]["defaults"]["custom"]
    for key in ("axisSoftMin", "axisSoftMax"):
        if custom.get(key) is None:
            custom.pop(key, None)
    custom["axisBorderShow"] = False
    custom["insertNulls"] = False


_FIXERS: dict[str, Any] = {
    "stat": _stat,
    "gauge": _gauge,
    "bargauge": _bargauge,
    "table": _table,
    "piechart": _piechart,
    "state-timeline": _state_timeline,
    "timeseries": _timeseries,
}


def _variable(variable: Json) -> Json:
    out = {k: variable.get(k) for k in _VARIABLE_KEEP}
    out["options"] = []
    out["hide"] = 0
    if variable["type"] == "datasource":
        out.update(query="prometheus", refresh=1, regex="", current={}, datasource=None)
        out.pop("definition")
        out.pop("allValue")
        out.update(multi=False, includeAll=False)
        return {k: v for k, v in out.items() if v is not None}
    query = variable["query"]
    out["definition"] = query
    out["query"] = {
        "query": query,
        "qryType": 1,
        "refId": "PrometheusVariableQueryEditor-VariableQuery",
    }
    out["regex"] = variable.get("regex") or ""
    if variable.get("includeAll"):
        out["current"] = (
            {"selected": True, "text": ["All"], "value": ["$__all"]}
            if variable.get("multi")
            else {"selected": True, "text": "All", "value": "$__all"}
        )
    else:
        out["current"] = {}
    return {k: v for k, v in out.items() if v is not None}
