from __future__ import annotations

import io
import math
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from runtime.clock import VirtualClock
from tests.support.external import require_binary
from tsdb import Matcher, Store, StoreSettings, name_is, stale_mask
from tsdb.openmetrics import (
    OpenMetricsError,
    export_openmetrics,
    import_openmetrics,
)

T0 = 1_700_000_000_000
ALL = (0, 2**62)


def _fill(store: Store) -> None:
    for i in range(3):
        ref = store.ref({"__name__": "http_requests_total", "code": "200", "pod": f"web-{i}"})
        store.append_batch(
            np.full(20, ref, np.int32), T0 + np.arange(20) * 15_000, np.arange(20.0) * (i + 1)
        )
    store.append({"__name__": "temperature", "room": 'a "quoted"\nroom'}, T0, -1.25e-7)
    store.append({"__name__": "temperature", "room": 'a "quoted"\nroom'}, T0 + 1, math.inf)
    store.mark_stale({"__name__": "temperature", "room": 'a "quoted"\nroom'}, T0 + 2)


def test_round_trip(open_store: Callable[..., Store], clock: VirtualClock) -> None:
    source = open_store()
    _fill(source)
    text = io.StringIO()
    written = export_openmetrics(source, [Matcher.parse("__name__", "=~", ".+")], *ALL, text)
    body = text.getvalue()
    # Staleness markers have no OpenMetrics form and are left out.
    assert written == 62
    assert body.count("temperature{") == 2
    assert body.endswith("# EOF\n")
    assert 'http_requests_total{code="200",pod="web-1"} 2.0 1700000015.000' in body
    assert 'temperature{room="a \\"quoted\\"\\nroom"} -1.25e-07 1700000000.000' in body

    target = Store(StoreSettings(), clock, persistent=False)
    assert import_openmetrics(target, body) == 62
    everything = [Matcher.parse("__name__", "=~", ".+")]
    before = {s.labels: s for s in source.select(everything, *ALL)}
    after = {s.labels: s for s in target.select(everything, *ALL)}
    assert before.keys() == after.keys()
    for labels, s in after.items():
        keep = ~stale_mask(before[labels].values)
        assert np.array_equal(s.timestamps, before[labels].timestamps[keep])
        assert np.array_equal(s.values, before[labels].values[keep])


def test_bad_input_names_the_line(open_store: Callable[..., Store]) -> None:
    store = open_store()
    with pytest.raises(OpenMetricsError, match=r"dump.om:2: "):
        import_openmetrics(store, '# TYPE a unknown\na{x="1" 1 2\n# EOF\n', "dump.om")
    with pytest.raises(OpenMetricsError, match="has no timestamp"):
        import_openmetrics(store, "# TYPE a unknown\na 1\n# EOF\n")
    assert store.select([name_is("a")], *ALL) == []


def test_promtool_builds_blocks_from_an_export(
    open_store: Callable[..., Store], tmp_path: Path
) -> None:
    promtool = require_binary("promtool")
    store = open_store()
    _fill(store)
    out = tmp_path / "export.om"
    with out.open("w") as f:
        export_openmetrics(store, [name_is("http_requests_total")], *ALL, f)
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(out), str(tmp_path / "tsdb")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "tsdb" / "wal").mkdir()  # dump reads a (here empty) WAL too
    dump = subprocess.run(
        [promtool, "tsdb", "dump", str(tmp_path / "tsdb")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dump.returncode == 0, dump.stderr
    lines = [line for line in dump.stdout.splitlines() if "http_requests_total" in line]
    assert len(lines) == 60
    assert any(
        'pod="web-2"' in line and " 57 " in line and line.endswith(str(T0 + 19 * 15_000))
        for line in lines
    )
