"""Autoscaler: what did each PredictiveAutoscaler forecast, decide and recommend, and why?"""

from __future__ import annotations

import grafanalib.core as g

from dashboards.core import (
    CORES,
    Layout,
    Query,
    dashboard,
    link,
    override,
    query_variable,
    stat,
    state_timeline,
    table,
    timeseries,
    value_map,
)
from dashboards.queries import (
    AUTOSCALER,
    CLUSTERS,
    NAMESPACE,
    label_values,
    one_per,
    requests_per_autoscaler,
    sel,
)
from runtime import names

UID = "foresight-autoscaler"
DASHED = {"fill": "dash", "dash": [10, 10]}
A = (NAMESPACE, AUTOSCALER)


def _fixed(color: str) -> dict[str, str]:
    return {"mode": "fixed", "fixedColor": color}


def _overview(layout: Layout) -> None:
    layout.row("PredictiveAutoscalers")
    info = sel(names.AUTOSCALER_INFO, *A)
    described = f"max by (namespace, autoscaler, target_kind, target, mode) ({info})"
    layout.add(
        table(
            "PredictiveAutoscalers",
            [
                Query(described),
                *(
                    Query(
                        f"max by (namespace, autoscaler) ({sel(metric, *A)}) "
                        f"* on (namespace, autoscaler) group_left (target_kind, target, mode) "
                        f"{one_per('namespace, autoscaler', described)}"
                    )
                    for metric in (
                        names.AUTOSCALER_CURRENT_REPLICAS,
                        names.AUTOSCALER_DESIRED_REPLICAS,
                        names.AUTOSCALER_MIN_REPLICAS,
                        names.AUTOSCALER_MAX_REPLICAS,
                        names.AUTOSCALER_FORECAST_ERROR,
                    )
                ),
            ],
            "Each PredictiveAutoscaler, what it scales, its mode (Off, Recommend, Auto), its "
            "replicas and how wrong its recent forecasts were.",
            columns={
                "namespace": "Namespace",
                "autoscaler": "Autoscaler",
                "target_kind": "Target kind",
                "target": "Target",
                "mode": "Mode",
                "Value #B": "Current",
                "Value #C": "Desired",
                "Value #D": "Min",
                "Value #E": "Max",
                "Value #F": "Forecast error",
            },
            hidden=("Time", "Value #A"),
            units={"Forecast error": "percentunit"},
            overrides=[
                override(
                    "Forecast error",
                    thresholds={
                        "mode": "absolute",
                        "steps": [
                            {"color": "green", "value": None},
                            {"color": "orange", "value": 0.2},
                            {"color": "red", "value": 0.5},
                        ],
                    },
                    custom__cellOptions={"type": "color-text"},
                ),
                override(
                    "Target",
                    links=[
                        link(
                            "Workload ${__value.raw}",
                            "foresight-workloads",
                            "var-namespace=${__data.fields.Namespace}&var-workload=${__value.raw}",
                        )
                    ],
                ),
            ],
        ),
        18,
        7,
    )
    layout.add(
        stat(
            "Leader",
            [Query(f"max by (identity) ({sel(names.LEADER)})", "{{identity}}")],
            "none",
            "Which foresight replica holds the lease and acts (scales, notifies); the other "
            "collects and waits.",
            thresholds=(("text", None), ("green", 1)),
            mappings=value_map({"1": ("leader", "green"), "0": ("standby", "text")}),
            no_value="no leader",
        ),
        6,
        7,
    )


def _forecast(layout: Layout) -> None:
    layout.row("Forecast and replicas of $autoscaler")
    forecast = names.AUTOSCALER_FORECAST
    load = timeseries(
        "$autoscaler: load and forecast",
        [
            Query(f"max by (autoscaler) ({sel(names.AUTOSCALER_LOAD, *A)})", "load"),
            Query(
                f"max by (autoscaler, quantile) ({sel(forecast, *A)})",
                "forecast q{{quantile}}",
            ),
        ],
        "short",
        "Load of the whole workload in the autoscaler's metric units, and the peak load "
        "forecast over the horizon at the quantile of the spec (forecast.quantile), which "
        "the replicas are sized for; drawn when the forecast was made, so it leads the load "
        "by the horizon.",
        fill=0,
        overrides=[
            override("load", color=_fixed("blue"), custom__lineWidth=2),
            override(
                "forecast .*",
                regex=True,
                color=_fixed("purple"),
                custom__lineStyle=DASHED,
                custom__lineWidth=2,
            ),
        ],
    )
    load.repeat = g.Repeat(direction="h", variable="autoscaler", maxPerRow=2)
    layout.add(load, 12, 8)
    replicas = timeseries(
        "$autoscaler: replicas",
        [
            Query(f"max({sel(names.AUTOSCALER_CURRENT_REPLICAS, *A)})", "current"),
            Query(f"max({sel(names.AUTOSCALER_DESIRED_REPLICAS, *A)})", "desired"),
            Query(f"max({sel(names.AUTOSCALER_MIN_REPLICAS, *A)})", "min"),
            Query(f"max({sel(names.AUTOSCALER_MAX_REPLICAS, *A)})", "max"),
        ],
        "none",
        "Replicas running and asked for; desired pinned at min or max means the bounds, not "
        "the forecast, decide.",
        fill=0,
        overrides=[
            override("desired", custom__lineStyle=DASHED, custom__lineWidth=2),
            override("min", color=_fixed("text"), custom__lineStyle={"fill": "dot"}),
            override("max", color=_fixed("text"), custom__lineStyle={"fill": "dot"}),
        ],
    )
    replicas.repeat = g.Repeat(direction="h", variable="autoscaler", maxPerRow=2)
    layout.add(replicas, 12, 8)


def _decisions(layout: Layout) -> None:
    layout.row("Decisions")
    decisions = sel(names.AUTOSCALER_DECISIONS, *A)
    moves = sel(names.AUTOSCALER_DECISIONS, *A, direction="!none")
    layout.add(
        timeseries(
            "Scaling decisions by reason",
            [
                Query(
                    f"sum by (direction, reason) (increase({moves}[$__rate_interval]))",
                    "{{direction}}: {{reason}}",
                )
            ],
            "none",
            "Scale-ups and scale-downs per interval and why they were made.",
            bars=True,
            fill=80,
            stack=True,
        ),
        12,
        8,
    )
    layout.add(
        table(
            "Decisions over the time range",
            [
                Query(
                    "round(sum by (autoscaler, direction, reason) "
                    f"(increase({decisions}[$__range])))"
                )
            ],
            "How many decisions of each kind and reason over the dashboard's time range "
            "(`none` is a decision to hold).",
            columns={
                "autoscaler": "Autoscaler",
                "direction": "Direction",
                "reason": "Reason",
                "Value": "Decisions",
            },
            sort_by="Decisions",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Forecast error (MAPE)",
            [
                Query(
                    f"max by (autoscaler) ({sel(names.AUTOSCALER_FORECAST_ERROR, *A)})",
                    "{{autoscaler}}",
                )
            ],
            "percentunit",
            "Mean absolute percentage error of recent forecasts. Above 20 % the forecasts are "
            "a weak guide; foresight scales more reactively.",
            thresholds=(("transparent", None), ("orange", 0.2), ("red", 0.5)),
            threshold_style="dashed",
            fill=0,
        ),
        12,
        8,
    )
    conditions = sel(names.AUTOSCALER_CONDITION, *A)
    true = sel(names.AUTOSCALER_CONDITION, *A, status="True")
    layout.add(
        state_timeline(
            "Conditions",
            [
                Query(
                    f"max by (autoscaler, condition) ({true}) "
                    f"or max by (autoscaler, condition) (0 * {conditions})",
                    "{{autoscaler}} {{condition}}",
                )
            ],
            "Status conditions over time. ForecastReady and AbleToScale should be True; "
            "ScalingLimited and ConflictingAutoscaler should be False.",
            value_map({"1": ("True", "green"), "0": ("False", "text")}),
            thresholds=(("text", None), ("green", 1)),
            overrides=[
                override(
                    ".*(ScalingLimited|ConflictingAutoscaler)",
                    regex=True,
                    mappings=value_map({"1": ("True", "red"), "0": ("False", "green")}),
                )
            ],
        ),
        12,
        8,
    )


def _vertical(layout: Layout) -> None:
    layout.row("Vertical recommendations")
    for resource, metric, unit, what in (
        ("cpu", names.AUTOSCALER_RECOMMENDED_CPU, CORES, "CPU"),
        ("memory", names.AUTOSCALER_RECOMMENDED_MEMORY, "bytes", "Memory"),
    ):
        layout.add(
            timeseries(
                f"{what} request: recommended vs current",
                [
                    Query(
                        f"max by (autoscaler, container) ({sel(metric, *A)})",
                        "{{autoscaler}}/{{container}} recommended",
                    ),
                    Query(
                        requests_per_autoscaler(resource, "avg", *A),
                        "{{autoscaler}}/{{container}} current",
                    ),
                ],
                unit,
                f"{what} request per container that foresight recommends, against the "
                "current request (average over the target's pods). Mode Auto applies it; "
                "Recommend only reports it.",
                fill=0,
                overrides=[
                    override(
                        ".* recommended", regex=True, custom__lineStyle=DASHED, custom__lineWidth=2
                    )
                ],
            ),
            12,
            8,
        )


def build() -> g.Dashboard:
    """The autoscaler dashboard."""
    layout = Layout()
    _overview(layout)
    _forecast(layout)
    _decisions(layout)
    _vertical(layout)
    return dashboard(
        UID,
        "foresight / Autoscaler",
        "What each PredictiveAutoscaler forecast, decided and recommended, and why.",
        [
            query_variable("cluster", "Cluster", CLUSTERS),
            query_variable(
                "namespace",
                "Namespace",
                label_values(sel(names.AUTOSCALER_INFO), "namespace"),
            ),
            query_variable(
                "autoscaler",
                "Autoscaler",
                label_values(sel(names.AUTOSCALER_INFO, NAMESPACE), "autoscaler"),
            ),
        ],
        layout,
        time_from="now-24h",
    )
