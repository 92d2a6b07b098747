"""Building blocks for foresight's dashboards: grafanalib panels with our conventions.

Every panel gets the ``${datasource}`` data source, a unit and thresholds; a :class:`Layout`
places panels left to right on Grafana's 24-column grid, under collapsible rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grafanalib.core as g

DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
CORES = "suffix: cores"
GRID_WIDTH = 24
TAG = "foresight"

Json = dict[str, Any]
Step = tuple[str, float | None]

GREEN_ORANGE_RED: tuple[Step, ...] = (("green", None), ("orange", 0.8), ("red", 0.95))
ANY_IS_BAD: tuple[Step, ...] = (("green", None), ("red", 1))
ANY_IS_WARNING: tuple[Step, ...] = (("green", None), ("orange", 1))
NEUTRAL: tuple[Step, ...] = (("blue", None),)


def steps(thresholds: Iterable[Step]) -> list[Json]:
    """Grafana threshold steps; the first has no value (it is the base colour)."""
    return [{"color": color, "value": value} for color, value in thresholds]


@dataclass(frozen=True)
class Query:
    """One PromQL target: ``legend`` uses ``{{label}}``; ``table`` asks for an instant table."""

    expr: str
    legend: str = ""
    table: bool = False
    instant: bool = False


def targets(queries: Sequence[Query], instant: bool = False) -> list[g.Target]:
    """grafanalib targets with refIds A, B, C...; ``instant`` for panels showing one value."""
    return [
        g.Target(
            expr=q.expr,
            legendFormat=q.legend,
            refId=chr(ord("A") + i),
            instant=instant or q.instant or q.table,
            format="table" if q.table else "time_series",
            datasource=DATASOURCE,
        )
        for i, q in enumerate(queries)
    ]


def _override(name: str, properties: Mapping[str, Any], regex: bool = False) -> Json:
    return {
        "matcher": {"id": "byRegexp" if regex else "byName", "options": name},
        "properties": [{"id": k, "value": v} for k, v in properties.items()],
    }


def override(name: str, regex: bool = False, **properties: Any) -> Json:
    """A field override; property ids with dots are given with ``__`` (``custom__width``)."""
    return _override(name, {k.replace("__", "."): v for k, v in properties.items()}, regex)


def link(title: str, uid: str, params: str = "") -> Json:
    """A data link to another foresight dashboard, keeping time range and data source."""
    url = f"/d/{uid}/{uid}?${{__url_time_range}}&${{datasource:queryparam}}&${{cluster:queryparam}}"
    return {"title": title, "url": url + (f"&{params}" if params else "")}


def timeseries(
    title: str,
    queries: Sequence[Query],
    unit: str,
    description: str,
    thresholds: Iterable[Step] = NEUTRAL,
    stack: bool = False,
    fill: int = 10,
    minimum: int | None = 0,
    maximum: int | None = None,
    bars: bool = False,
    threshold_style: str = "off",
    overrides: Sequence[Json] = (),
    legend_calcs: Sequence[str] = ("lastNotNull", "max"),
) -> g.TimeSeries:
    """A time series with a table legend showing the last and highest values."""
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets(queries),
        unit=unit,
        thresholds=steps(thresholds),
        thresholdsStyleMode=threshold_style,
        stacking={"mode": "normal", "group": "A"} if stack else {"mode": "none"},
        fillOpacity=fill,
        drawStyle="bars" if bars else "line",
        lineWidth=1,
        showPoints="never",
        valueMin=minimum,
        valueMax=maximum,
        legendDisplayMode="table",
        legendPlacement="bottom",
        legendCalcs=list(legend_calcs),
        tooltipMode="multi",
        tooltipSort="desc",
        overrides=list(overrides),
    )


def stat(
    title: str,
    queries: Sequence[Query],
    unit: str,
    description: str,
    thresholds: Iterable[Step] = NEUTRAL,
    decimals: int | None = None,
    links: Sequence[Json] = (),
    no_value: str = "0",
    graph: bool = False,
    mappings: Sequence[Json] = (),
) -> g.Stat:
    """A single number coloured by thresholds (``noValue`` for when nothing matches)."""
    return g.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets(queries, instant=not graph),
        format=unit,
        decimals=decimals,
        thresholds=steps(thresholds),
        colorMode="background" if not graph else "value",
        graphMode="area" if graph else "none",
        reduceCalc="lastNotNull",
        textMode="value_and_name" if len(queries) > 1 or "{{" in queries[0].legend else "auto",
        noValue=no_value,
        links=list(links),
        mappings=list(mappings),
    )


def gauge(
    title: str,
    query: Query,
    unit: str,
    description: str,
    thresholds: Iterable[Step] = GREEN_ORANGE_RED,
    maximum: float = 1,
) -> g.GaugePanel:
    """A gauge of one value between 0 and ``maximum``."""
    return g.GaugePanel(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets([query], instant=True),
        format=unit,
        calc="lastNotNull",
        min=0,
        max=maximum,
        thresholds=steps(thresholds),
    )


def bargauge(
    title: str,
    queries: Sequence[Query],
    unit: str,
    description: str,
    thresholds: Iterable[Step] = NEUTRAL,
    maximum: float | None = None,
) -> g.BarGauge:
    """Horizontal bars, one per series (top-N lists, ratios per node)."""
    return g.BarGauge(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets(queries, instant=True),
        format=unit,
        calc="lastNotNull",
        min=0,
        max=maximum,
        displayMode="gradient",
        orientation="horizontal",
        thresholds=steps(thresholds),
    )


def table(
    title: str,
    queries: Sequence[Query],
    description: str,
    columns: Mapping[str, str],
    units: Mapping[str, str] | None = None,
    hidden: Iterable[str] = ("Time",),
    overrides: Sequence[Json] = (),
    sort_by: str | None = None,
    unit: str = "none",
) -> g.Table:
    """Instant queries merged into one row per label set.

    ``columns`` renames fields (``Value #A`` is the value of query A) and orders them;
    ``units`` gives a column's unit by its new name.
    """
    names = list(columns.values())
    organize = {
        "id": "organize",
        "options": {
            "excludeByName": dict.fromkeys(hidden, True),
            "renameByName": dict(columns),
            "indexByName": {old: i for i, old in enumerate(columns)},
        },
    }
    transformations: list[Json] = [{"id": "merge", "options": {}}, organize]
    if len(queries) == 1:
        transformations = [organize]
    unit_overrides = [override(name, unit=u) for name, u in (units or {}).items()]
    del names
    return g.Table(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets([Query(q.expr, q.legend, table=True) for q in queries]),
        unit=unit,
        filterable=True,
        overrides=[*unit_overrides, *overrides],
        transformations=transformations,
        sortBy=[g.TableSortByField(displayName=sort_by, desc=True)] if sort_by else [],
    )


def piechart(title: str, queries: Sequence[Query], unit: str, description: str) -> g.PieChartv2:
    """A donut with values and percentages in a legend on the right."""
    return g.PieChartv2(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets(queries, instant=True),
        unit=unit,
        pieType="donut",
        legendDisplayMode="table",
        legendPlacement="right",
        legendValues=["value", "percent"],
        reduceOptionsCalcs=["lastNotNull"],
        tooltipMode="single",
    )


def state_timeline(
    title: str,
    queries: Sequence[Query],
    description: str,
    mappings: Sequence[Json],
    thresholds: Iterable[Step] = ANY_IS_BAD,
    overrides: Sequence[Json] = (),
) -> g.StateTimeline:
    """States over time, one lane per series, named by value mappings."""
    return g.StateTimeline(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets(queries),
        mappings=list(mappings),
        overrides=list(overrides),
        mergeValues=True,
        showValue="never",
        rowHeight=0.8,
        fillOpacity=80,
        extraJson={
            "fieldConfig": {
                "defaults": {
                    "unit": "none",
                    "thresholds": {"mode": "absolute", "steps": steps(thresholds)},
                    "color": {"mode": "thresholds"},
                }
            }
        },
    )


def value_map(values: Mapping[str, tuple[str, str]]) -> list[Json]:
    """Value mappings: raw value -> (text, colour)."""
    return [
        {
            "type": "value",
            "options": {
                raw: {"text": text, "color": color, "index": i}
                for i, (raw, (text, color)) in enumerate(values.items())
            },
        }
    ]


def text(title: str, content: str) -> g.Text:
    """A Markdown note explaining how to read the dashboard."""
    return g.Text(title=title, content=content, mode="markdown", dataSource=DATASOURCE)


@dataclass
class Layout:
    """Places panels on the grid in order: left to right, wrapping at 24 columns."""

    panels: list[g.Panel] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_height: int = 0
    _next_id: int = 1

    def row(self, title: str, collapsed: bool = False) -> None:
        """Start a new row with a title bar."""
        self._newline()
        self.panels.append(
            g.RowPanel(
                title=title,
                id=self._take_id(),
                gridPos=g.GridPos(h=1, w=GRID_WIDTH, x=0, y=self._y),
                collapsed=collapsed,
            )
        )
        self._y += 1

    def add(self, panel: g.Panel, w: int, h: int = 8) -> None:
        """Place ``panel`` with width ``w`` (of 24) and height ``h`` grid units."""
        if not 0 < w <= GRID_WIDTH:
            raise ValueError(f"panel {panel.title!r}: width {w} is not within 1..{GRID_WIDTH}")
        if self._x + w > GRID_WIDTH:
            self._newline()
        panel.gridPos = g.GridPos(h=h, w=w, x=self._x, y=self._y)
        panel.id = self._take_id()
        self.panels.append(panel)
        self._x += w
        self._row_height = max(self._row_height, h)

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_height
        self._x, self._row_height = 0, 0

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1


def datasource_variable() -> g.Template:
    """The Prometheus data source every panel reads, chosen by the viewer."""
    return g.Template(name="datasource", query="prometheus", type="datasource", label="Data source")


def query_variable(
    name: str, label: str, query: str, multi: bool = True, include_all: bool = True
) -> g.Template:
    """A variable filled from ``label_values(...)``; "All" matches series without the label."""
    return g.Template(
        name=name,
        label=label,
        query=query,
        dataSource=DATASOURCE,
        multi=multi,
        includeAll=include_all,
        allValue=".*",
        refresh=2,  # on time range change: namespaces and pods come and go
        sort=1,
    )


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: Sequence[g.Template],
    layout: Layout,
    time_from: str = "now-6h",
) -> g.Dashboard:
    """A dashboard linked to the other foresight dashboards through the tag."""
    return g.Dashboard(
        uid=uid,
        title=title,
        description=description,
        tags=[TAG],
        panels=layout.panels,
        templating=g.Templating(list=[datasource_variable(), *variables]),
        links=[
            g.DashboardLink(
                title="foresight",
                type="dashboards",
                tags=[TAG],
                asDropdown=True,
                includeVars=True,
                keepTime=True,
            )
        ],
        time=g.Time(time_from, "now"),
        refresh="1m",
        graphTooltip=1,  # shared crosshair: compare panels at one instant
        timezone="browser",
    )
