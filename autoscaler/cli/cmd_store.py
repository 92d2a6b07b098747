"""``foresight store``: export, import and inspect the embedded time-series store."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

from autoscaler.cli.base import Command, CommandError
from autoscaler.settings import Settings
from runtime.clock import Clock, RealClock, VirtualClock
from tsdb import Matcher, Store, StoreError
from tsdb.openmetrics import (
    ImportProgress,
    OpenMetricsError,
    import_file,
    write_openmetrics,
)
from tsdb.selector import SelectorError, parse_selector
from tsdb.textstream import TEXT_FORMATS, TextFormat

# Seconds between two progress lines of an import.
PROGRESS_EVERY = 5.0


def parse_time(text: str) -> int:
    """Unix seconds or an RFC 3339 time, as milliseconds."""
    try:
        return int(float(text) * 1000)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: use unix seconds or RFC 3339 (2026-01-02T15:04:05Z)"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"time {text!r} needs a timezone, e.g. a trailing Z")
    return int(moment.timestamp() * 1000)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    export = sub.add_parser(
        "export",
        help="write series as OpenMetrics text (readable by promtool tsdb create-blocks-from)",
        description="Write the matching series as OpenMetrics text. "
        "Staleness markers are left out.",
    )
    export.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="SELECTOR",
        help="series selector, e.g. 'container_cpu_usage_seconds_total{namespace=\"shop\"}' "
        "(repeatable; default: every series)",
    )
    export.add_argument("--start", type=parse_time, default=0, help="unix seconds or RFC 3339")
    export.add_argument("--end", type=parse_time, default=2**62, help="unix seconds or RFC 3339")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    imp = sub.add_parser(
        "import",
        help="append the samples of OpenMetrics or Prometheus text files "
        "(every sample needs a timestamp)",
        description="Append the samples of OpenMetrics or Prometheus text format files to "
        "the store, in any time order, reading each file piece by piece in bounded memory "
        "and printing progress every few seconds. A metric family that appears in several "
        "places is accepted with a warning, as promtool accepts it; exemplars and the "
        "_created samples of counters, histograms and summaries are ignored. At an error, "
        "which names the file and line, the samples before it stay imported; importing the "
        "fixed file again is safe, since a sample stored twice is read once.",
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument(
        "--format",
        choices=["auto", *TEXT_FORMATS],
        default="auto",
        help="auto (the default): OpenMetrics if the file ends with '# EOF', else the "
        "Prometheus text format (timestamps in milliseconds)",
    )
    sub.add_parser("stats", help="print series, samples, blocks, memory and disk use")


def _open(settings: Settings) -> Store:
    try:
        return Store(settings.store, RealClock())
    except StoreError as e:
        raise CommandError(str(e)) from e


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.store_command == "export":
        return _export(args, settings)
    if args.store_command == "import":
        return _import(args, settings)
    with _open(settings) as store:
        for key, value in vars(store.stats()).items():
            print(f"{key:<20} {value}")
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    selectors: list[str] = args.match or ['{__name__=~".+"}']
    try:
        matcher_sets: list[list[Matcher]] = [parse_selector(s) for s in selectors]
    except SelectorError as e:
        raise CommandError(str(e)) from e
    with _open(settings) as store:
        out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
        try:
            # Several selectors may match one series; export it once.
            series = {
                s.labels: s for m in matcher_sets for s in store.select(m, args.start, args.end)
            }
            written = write_openmetrics(series.values(), out)
        finally:
            if args.output:
                out.close()
    print(f"exported {written:,} samples of {len(series):,} series", file=sys.stderr)
    return 0


class ProgressPrinter:
    """Prints how far an import has come, at most once every ``every`` seconds."""

    def __init__(self, clock: Clock, out: TextIO, every: float = PROGRESS_EVERY) -> None:
        self._clock = clock
        self._out = out
        self._every = every
        self._start = clock.now()
        self._next = self._start + every

    def __call__(self, progress: ImportProgress) -> None:
        now = self._clock.now()
        if now < self._next:
            return
        self._next = now + self._every
        share = progress.bytes_read / progress.bytes_total if progress.bytes_total else 1.0
        rate = progress.samples / max(now - self._start, 1e-9)
        print(
            f"{progress.source}: {progress.samples:,} samples, {share:.0%} read, "
            f"{rate:,.0f} samples/s",
            file=self._out,
            flush=True,
        )


def _import(args: argparse.Namespace, settings: Settings) -> int:
    text_format: TextFormat | None = None if args.format == "auto" else args.format
    clock = RealClock()
    # The store's clock stands still during the import: its maintenance (retention,
    # merging, forgetting series) would otherwise run every minute in the middle of it.
    # The next `foresight run` maintains what was imported.
    try:
        store = Store(settings.store, VirtualClock(start=clock.now()))
    except StoreError as e:
        raise CommandError(str(e)) from e
    with store:
        for path in args.files:
            try:
                result = import_file(
                    store,
                    path,
                    text_format,
                    warn=lambda message: print(f"warning: {message}", file=sys.stderr),
                    progress=ProgressPrinter(clock, sys.stderr),
                )
            except OpenMetricsError as e:
                raise CommandError(str(e)) from e
            except (StoreError, OSError) as e:
                raise CommandError(f"{settings.store.data_dir}: {e}") from e
            print(
                f"{path}: imported {result.samples:,} samples ({result.text_format})",
                file=sys.stderr,
            )
    return 0


COMMAND = Command(
    name="store",
    help="export, import or inspect the time-series store (OpenMetrics text)",
    description="Move series between foresight's store (FORESIGHT_STORE__DATA_DIR) and "
    "Prometheus tooling in the OpenMetrics text format, or show its size.",
    add_arguments=_add_arguments,
    run=_run,
)
