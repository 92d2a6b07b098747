"""``foresight cost``: what the cluster costs by namespace, workload or node, and idles."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from autoscaler.cli.base import Command, CommandError
from autoscaler.cli.cmd_store import parse_time
from autoscaler.settings import Settings

if TYPE_CHECKING:
    from autoscaler.cost.report import Report

_PART = re.compile(r"(\d+(?:\.\d+)?)(s|m|h|d|w)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``30m``, ``24h``, ``7d`` or ``1h30m``."""
    try:
        seconds = float(text)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise argparse.ArgumentTypeError(
                f"invalid duration {text!r}: use seconds or e.g. 30m, 24h, 7d"
            ) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be positive")
    return seconds


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--by", choices=("namespace", "workload", "node"), default="namespace", help="grouping"
    )
    parser.add_argument(
        "--window",
        type=parse_duration,
        default=86400.0,
        metavar="DURATION",
        help="time span to average over, e.g. 1h, 24h, 7d (default 24h)",
    )
    parser.add_argument(
        "--step", type=parse_duration, metavar="DURATION", help="resolution (default: window/300)"
    )
    parser.add_argument("--at", type=parse_time, help="end of the window (default: now)")
    parser.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--source",
        metavar="URL",
        help="a running foresight's /metrics URL (current cost only), or a Prometheus-"
        "compatible API base URL (e.g. http://prometheus:9090)",
    )
    where.add_argument(
        "--data-dir",
        type=Path,
        help="a stopped foresight's data directory (default: the store.data_dir setting)",
    )


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from autoscaler.cost.formats import render  # noqa: PLC0415
    from runtime.clock import RealClock  # noqa: PLC0415

    end_s = args.at / 1000 if args.at is not None else RealClock().now()
    report = asyncio.run(_report(args, settings, end_s))
    if not report.moments:
        raise CommandError(
            "no node capacity found in the window: is foresight collecting into this source?"
        )
    sys.stdout.write(render(report, args.format))
    return 0


async def _report(args: argparse.Namespace, settings: Settings, end_s: float) -> Report:
    import httpx  # noqa: PLC0415

    from autoscaler.cost.service import load_report  # noqa: PLC0415
    from autoscaler.cost.sources import (  # noqa: PLC0415
        CostSourceError,
        MetricsPage,
        PrometheusSeries,
        StoreSeries,
    )
    from collectors.kube import api_backoff  # noqa: PLC0415
    from collectors.prometheus_source import PrometheusSource  # noqa: PLC0415
    from runtime.clock import RealClock  # noqa: PLC0415
    from tsdb import Store, StoreError  # noqa: PLC0415

    try:
        if args.source:
            async with httpx.AsyncClient() as client:
                if args.source.rstrip("/").endswith("/metrics"):
                    source = MetricsPage(client, args.source)
                    return await load_report(source, args.by, end_s, 1.0, settings.cost, 1.0)
                retry = api_backoff(settings.kubernetes)
                prometheus = PrometheusSource(client, args.source, RealClock(), retry)
                return await load_report(
                    PrometheusSeries(prometheus, args.source),
                    args.by,
                    end_s,
                    args.window,
                    settings.cost,
                    args.step,
                )
        store_settings = settings.store
        if args.data_dir is not None:
            store_settings = store_settings.model_copy(update={"data_dir": args.data_dir})
        try:
            store = Store(store_settings, RealClock())
        except StoreError as e:
            raise CommandError(str(e)) from e
        with store:
            series = StoreSeries(store, settings.promql, str(store_settings.data_dir))
            return await load_report(series, args.by, end_s, args.window, settings.cost, args.step)
    except CostSourceError as e:
        raise CommandError(str(e)) from e


COMMAND = Command(
    name="cost",
    help="report what the cluster costs and could save",
    description="Hourly, window and monthly cost by namespace, workload or node, allocated as "
    "OpenCost does (each container pays max(request, usage) per resource at its node's "
    "price; what nodes cost beyond that is __idle__), CPU and memory efficiency, and the "
    "savings of applying the vertical recommendations. Reads a Prometheus-compatible "
    "server or a running foresight's /metrics (--source), or a data directory.",
    add_arguments=_add_arguments,
    run=_run,
)
