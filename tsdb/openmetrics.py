"""Moving series to and from Prometheus tooling in the OpenMetrics text format.

The export is what ``promtool tsdb create-blocks-from openmetrics`` reads, so a foresight
store can be loaded into Prometheus; the import reads the same format back (parsed by
prometheus-client). Staleness markers have no representation in OpenMetrics and are left out
of exports. Types are not stored, so every family is exported as ``unknown``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TextIO

import numpy as np
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tsdb.labels import METRIC_NAME, Matcher, format_labels, make_labels, metric_name
from tsdb.store import Series, Store, stale_mask

_BATCH = 100_000


class OpenMetricsError(ValueError):
    """Input that is not valid OpenMetrics text; the message names the line."""


def _format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def write_openmetrics(series: Iterable[Series], out: TextIO) -> int:
    """Write series as OpenMetrics text, grouped by metric name; returns samples written."""
    by_name: dict[str, list[Series]] = {}
    for s in series:
        by_name.setdefault(metric_name(s.labels), []).append(s)
    written = 0
    for name in sorted(by_name):
        out.write(f"# TYPE {name} unknown\n")
        for s in sorted(by_name[name], key=lambda x: x.labels):
            prefix = format_labels(s.labels)
            keep = ~stale_mask(s.values)
            for ts, v in zip(s.timestamps[keep].tolist(), s.values[keep].tolist(), strict=True):
                out.write(f"{prefix} {_format_value(v)} {ts // 1000}.{ts % 1000:03d}\n")
                written += 1
    out.write("# EOF\n")
    return written


def export_openmetrics(
    store: Store, matchers: Sequence[Matcher], start_ms: int, end_ms: int, out: TextIO
) -> int:
    """Export the matching series in ``[start_ms, end_ms]``; returns samples written."""
    return write_openmetrics(store.select(matchers, start_ms, end_ms), out)


def import_openmetrics(store: Store, text: str, source: str = "<input>") -> int:
    """Append every sample of an OpenMetrics text; returns samples imported.

    Every sample must carry a timestamp. On malformed input nothing is imported and
    :class:`OpenMetricsError` names the source and line.
    """
    refs: list[int] = []
    stamps: list[int] = []
    values: list[float] = []
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as e:
        raise OpenMetricsError(f"{source}:{_failing_line(text)}: {e}") from e
    for family in families:
        for sample in family.samples:
            if sample.timestamp is None:
                raise OpenMetricsError(
                    f"{source}: sample {sample.name}{sample.labels} has no timestamp"
                )
            ts = sample.timestamp
            ms = ts.sec * 1000 + ts.nsec // 1_000_000 if hasattr(ts, "sec") else int(ts * 1000)
            refs.append(store.ref(make_labels({**sample.labels, METRIC_NAME: sample.name})))
            stamps.append(ms)
            values.append(float(sample.value))
    for at in range(0, len(refs), _BATCH):
        store.append_batch(
            np.array(refs[at : at + _BATCH], dtype=np.int32),
            np.array(stamps[at : at + _BATCH], dtype=np.int64),
            np.array(values[at : at + _BATCH], dtype=np.float64),
        )
    return len(refs)


def _failing_line(text: str) -> int:
    """The first line at which parsing fails: a prefix of valid lines plus EOF is valid."""
    lines = [line for line in text.splitlines() if line.strip() != "# EOF"]

    def parses(k: int) -> bool:
        try:
            list(text_string_to_metric_families("\n".join([*lines[:k], "# EOF", ""])))
        except ValueError:
            return False
        return True

    lo, hi = 0, len(lines)  # lines[:lo] parse; lines[:hi] may not
    if parses(hi):
        return hi + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if parses(mid):
            lo = mid
        else:
            hi = mid
    return hi
