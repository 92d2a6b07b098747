"""A cost report as a text table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from autoscaler.cost.model import RESOURCES
from autoscaler.cost.pricing import HOURS_PER_MONTH
from autoscaler.cost.report import Report, Row


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _money(value: float) -> str:
    return f"{value:,.4f}"


def row_dict(row: Row) -> dict[str, Any]:
    """One row with every figure, hourly figures per resource."""
    return {
        "name": row.name,
        **{f"{r}_hourly": row.hourly.get(r, 0.0) for r in RESOURCES},
        "total_hourly": row.total_hourly,
        "window_cost": row.window_cost,
        "monthly": row.monthly,
        "idle_hourly": row.idle_hourly,
        "cpu_efficiency": row.cpu_efficiency,
        "memory_efficiency": row.memory_efficiency,
        "savings_monthly": row.savings_monthly,
    }


def to_json(report: Report) -> str:
    """The report as one JSON document."""
    return json.dumps(
        {
            "by": report.by,
            "window_hours": report.window_hours,
            "samples": report.moments,
            "currency": report.currency,
            "cluster_hourly": report.cluster_hourly,
            "cluster_monthly": report.cluster_hourly * HOURS_PER_MONTH,
            "idle_hourly": report.idle_hourly,
            "savings_monthly": report.savings_hourly * HOURS_PER_MONTH,
            "rows": [row_dict(r) for r in report.rows],
        },
        indent=2,
    )


def to_csv(report: Report) -> str:
    """One line per row, with a header."""
    out = io.StringIO()
    rows = [row_dict(r) for r in report.rows]
    fields = list(row_dict(Row("", {}, 0.0)).keys())
    writer = csv.DictWriter(out, fieldnames=[report.by, *fields[1:]], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({report.by: row.pop("name"), **row})
    return out.getvalue()


def to_table(report: Report) -> str:
    """Aligned columns for a terminal, with totals underneath."""
    cur = report.currency
    window = f"{report.window_hours:g} h"
    header = [report.by.upper(), "CPU/h", "MEM/h", "GPU/h", "STORAGE/h", "TOTAL/h"]
    header += [f"{window}", "MONTHLY", "CPU EFF", "MEM EFF"]
    header += ["IDLE/h"] if report.by == "node" else []
    header += ["SAVINGS/MO"] if report.savings_hourly else []
    lines = [header]
    for row in report.rows:
        line = [row.name, *(_money(row.hourly.get(r, 0.0)) for r in RESOURCES)]
        line += [_money(row.total_hourly), f"{row.window_cost:,.2f}", f"{row.monthly:,.2f}"]
        line += [_pct(row.cpu_efficiency), _pct(row.memory_efficiency)]
        line += [_money(row.idle_hourly)] if report.by == "node" else []
        line += [f"{row.savings_monthly:,.2f}"] if report.savings_hourly else []
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    text.append("")
    text.append(
        f"cluster: {report.cluster_hourly:,.4f} {cur}/h, "
        f"{report.cluster_hourly * report.window_hours:,.2f} {cur} over {window}, "
        f"{report.cluster_hourly * HOURS_PER_MONTH:,.2f} {cur}/month; "
        f"idle {report.idle_hourly * HOURS_PER_MONTH:,.2f} {cur}/month"
        + (f" ({report.idle_hourly / report.cluster_hourly:.0%})" if report.cluster_hourly else "")
    )
    if report.savings_hourly:
        text.append(
            f"applying the vertical recommendations would save "
            f"{report.savings_hourly * HOURS_PER_MONTH:,.2f} {cur}/month"
        )
    plural = "" if report.moments == 1 else "s"
    text.append(f"({report.moments} sample{plural} over the window; prices in {cur})")
    return "\n".join(text) + "\n"


FORMATS: dict[str, Callable[[Report], str]] = {"table": to_table, "json": to_json, "csv": to_csv}


def render(report: Report, fmt: str) -> str:
    """The report in a named format; an unknown name lists the valid ones."""
    try:
        return FORMATS[fmt](report)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r} (valid: {', '.join(FORMATS)})") from None
