"""``store import``'s reader: both text formats, leniency as promtool's, errors naming the
file and line, files read piece by piece, and the same samples as promtool imports."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.clock import VirtualClock
from tests.support.external import require_binary
from tsdb import Matcher, Store, StoreSettings, stale_mask
from tsdb.labels import Labels, format_labels
from tsdb.openmetrics import (
    ImportProgress,
    OpenMetricsError,
    import_file,
    import_text,
    write_openmetrics,
)
from tsdb.store import Series
from tsdb.textstream import TextFormat

EVERYTHING = [Matcher.parse("__name__", "=~", ".+")]
Samples = dict[Labels, list[tuple[int, float]]]


def _contents(store: Store) -> Samples:
    return {
        s.labels: list(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
        for s in store.select(EVERYTHING, -(2**62), 2**62)
    }


def _memory_store(clock: VirtualClock, head_max_samples: int = 1_000_000) -> Store:
    return Store(StoreSettings(head_max_samples=head_max_samples), clock, persistent=False)


def _import_file(
    clock: VirtualClock, path: Path, text: str | bytes, text_format: TextFormat | None = None
) -> tuple[Samples, list[str]]:
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    store = _memory_store(clock)
    warnings: list[str] = []
    import_file(store, path, text_format, warn=warnings.append)
    return _contents(store), warnings


def test_openmetrics_ignores_created_samples_exemplars_and_metadata(
    clock: VirtualClock, tmp_path: Path
) -> None:
    text = (
        "# HELP http_requests Requests served.\n"
        "# TYPE http_requests counter\n"
        'http_requests_total{code="200"} 3 1700000000.000 # {trace_id="a b"} 1.0 1700000000.0\n'
        'http_requests_created{code="200"} 1699999000.0 1700000000.000\n'
        'http_requests_total{code="200"} 5 1700000015.5\n'
        "# TYPE latency_seconds histogram\n"
        "# UNIT latency_seconds seconds\n"
        'latency_seconds_bucket{le="0.1"} 1 1700000000\n'
        'latency_seconds_bucket{le="+Inf"} 2 1700000000 # {trace_id="x"} 0.3\n'
        "latency_seconds_count 2 1700000000\n"
        "latency_seconds_sum 0.3 1700000000\n"
        "latency_seconds_created 1699999000 1700000000\n"
        "# TYPE temperature gauge\n"
        "temperature_created 5 1700000000\n"
        "# EOF\n"
    )
    got, warnings = _import_file(clock, tmp_path / "in.om", text)
    assert warnings == []
    assert got == {
        (("__name__", "http_requests_total"), ("code", "200")): [
            (1_700_000_000_000, 3.0),
            (1_700_000_015_500, 5.0),
        ],
        (("__name__", "latency_seconds_bucket"), ("le", "0.1")): [(1_700_000_000_000, 1.0)],
        (("__name__", "latency_seconds_bucket"), ("le", "+Inf")): [(1_700_000_000_000, 2.0)],
        (("__name__", "latency_seconds_count"),): [(1_700_000_000_000, 2.0)],
        (("__name__", "latency_seconds_sum"),): [(1_700_000_000_000, 0.3)],
        # Only counters, histograms and summaries have _created samples; a gauge's is a series.
        (("__name__", "temperature_created"),): [(1_700_000_000_000, 5.0)],
    }


def test_prometheus_text_format_in_any_layout(clock: VirtualClock, tmp_path: Path) -> None:
    text = (
        "# HELP rpc_duration_seconds RPC latency.\n"
        "# TYPE rpc_duration_seconds summary\n"
        'rpc_duration_seconds{quantile="0.5"} 0.25 1700000000000\n'
        "\n"
        "rpc_duration_seconds_sum 17 1700000000000\n"
        "rpc_duration_seconds_count 40 1700000000000\n"
        "# a plain comment\n"
        '  odd_spacing { path = "/a b}#{" , }   +Inf    1700000000001  \n'
        "plain NaN 1700000000002\n"
        'escaped{v="a\\\\b\\"c\\nd",empty=""} -1.5e-3 1700000000003\n'
        "# TYPE up untyped\n"
        "up 1 -5\n"
    )
    got, warnings = _import_file(clock, tmp_path / "metrics.prom", text)
    assert warnings == []
    nan = got.pop((("__name__", "plain"),))
    assert nan[0][0] == 1_700_000_000_002 and math.isnan(nan[0][1])
    assert got == {
        (("__name__", "rpc_duration_seconds"), ("quantile", "0.5")): [(1_700_000_000_000, 0.25)],
        (("__name__", "rpc_duration_seconds_sum"),): [(1_700_000_000_000, 17.0)],
        (("__name__", "rpc_duration_seconds_count"),): [(1_700_000_000_000, 40.0)],
        (("__name__", "odd_spacing"), ("path", "/a b}#{")): [(1_700_000_000_001, math.inf)],
        (("__name__", "escaped"), ("v", 'a\\b"c\nd')): [(1_700_000_000_003, -0.0015)],
        (("__name__", "up"),): [(-5, 1.0)],
    }


def test_families_in_several_places_are_imported_with_a_warning(
    clock: VirtualClock, tmp_path: Path
) -> None:
    text = (
        "# TYPE a gauge\n"
        'a{x="1"} 1 1700000000\n'
        "# TYPE b counter\n"
        "b_total 1 1700000000\n"
        "# TYPE a gauge\n"
        'a{x="1"} 2 1700000015\n'
        "b_total 2 1700000015\n"
        'a{x="2"} 3 1700000015\n'
        "# EOF\n"
    )
    path = tmp_path / "scattered.om"
    got, warnings = _import_file(clock, path, text)
    assert warnings == [
        f"{path}:5: metric family a continues here after other families (it began at line 1); "
        "imported anyway, as promtool does",
        f"{path}:7: metric family b continues here after other families (it began at "
        "line 3); imported anyway, as promtool does",
    ]
    assert sum(len(v) for v in got.values()) == 5


def test_only_the_first_ten_scattered_families_are_named(
    clock: VirtualClock, tmp_path: Path
) -> None:
    lines = [f"m{i} {k} {1700000000 + 15 * k}" for k in range(2) for i in range(13)]
    got, warnings = _import_file(clock, tmp_path / "many.prom", "\n".join(lines) + "\n")
    assert len(got) == 13
    assert len(warnings) == 11
    assert warnings[-1].endswith(
        ":26: 3 more metric families appear in more than one place; imported anyway"
    )


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('# TYPE a unknown\na{x="1" 1 2\n# EOF\n', 2, "invalid label set"),
        ("# TYPE a unknown\na 1\n# EOF\n", 2, "sample a has no timestamp"),
        ("a 1 1700000000\na 2 1700000015\na 3 x\na 4 1700000045\n# EOF\n", 3, "invalid timestamp"),
        ("a 1 1700000000\na 2 1700000015\na one 1700000030\n# EOF\n", 3, "invalid value 'one'"),
        ("a 1 1700000000\n# EOF\na 2 1700000015\n# EOF\n", 3, "sample after # EOF (line 2)"),
        ("# TYPE a sometimes\na 1 1\n# EOF\n", 1, "invalid TYPE line"),
        ("a 1 1e30\n# EOF\n", 1, "invalid timestamp '1e30'"),
        ("a{b=1} 1 1\n# EOF\n", 1, "invalid label set"),
        ('a{b="1",b="2"} 1 1\n# EOF\n', 1, "duplicate label name"),
        ("a 1 1\na 2 3 4\n# EOF\n", 2, "unexpected text after the timestamp"),
        ("{} 1 1\n# EOF\n", 1, "not a sample"),
        (
            "a 1 1700000000000\na 2 1700000015.000\n",
            2,
            "invalid timestamp '1700000015.000'; the Prometheus text format takes integer "
            "milliseconds (an OpenMetrics file, with seconds, ends with # EOF)",
        ),
        ('a 1 1 # {t="1"} 1\n', 1, "unexpected text after the timestamp"),
    ],
)
def test_errors_name_the_file_and_line(
    clock: VirtualClock, tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "bad.txt"
    with pytest.raises(OpenMetricsError) as error:
        _import_file(clock, path, text)
    assert str(error.value).startswith(f"{path}:{line}: ")
    assert message in str(error.value)


def test_errors_outside_the_text(clock: VirtualClock, tmp_path: Path) -> None:
    path = tmp_path / "latin1.prom"
    with pytest.raises(OpenMetricsError, match=rf"^{re.escape(str(path))}:2: not UTF-8 text"):
        _import_file(clock, path, 'a 1 1\na{x="\xe9"} 1 1\n'.encode("latin-1"))
    with pytest.raises(OpenMetricsError, match=r":2: OpenMetrics text must end with a # EOF"):
        _import_file(clock, tmp_path / "cut.om", "a 1 1\na 2 2\n", text_format="openmetrics")
    with pytest.raises(OpenMetricsError, match=r"missing.om: No such file"):
        import_file(_memory_store(clock), tmp_path / "missing.om")


def _scrapes(series: int, scrapes: int) -> str:
    """Scrape after scrape, as a dump of a scraping server is laid out."""
    lines = ["# HELP load Load.", "# TYPE load gauge"]
    for k in range(scrapes):
        lines += [
            f'load{{pod="p{i}"}} {k * i + 0.5} {1700000000 + 15 * k}.000' for i in range(series)
        ]
    return "\n".join([*lines, "# EOF", ""])


def test_a_file_larger_than_a_piece_is_read_in_pieces(clock: VirtualClock, tmp_path: Path) -> None:
    text = _scrapes(7, 30)
    whole = _memory_store(clock)
    import_text(whole, text, "openmetrics")
    path = tmp_path / "big.om"
    path.write_text(text)
    store = _memory_store(clock)
    seen: list[ImportProgress] = []
    result = import_file(store, path, chunk_bytes=64, progress=seen.append)
    assert result.samples == 210
    assert len(seen) > len(text) // 64 - 1
    assert [p.bytes_read for p in seen] == sorted(p.bytes_read for p in seen)
    assert seen[-1].bytes_read == seen[-1].bytes_total == len(text)
    assert _contents(store) == _contents(whole)


def test_line_numbers_count_across_pieces(clock: VirtualClock, tmp_path: Path) -> None:
    lines = _scrapes(5, 40).split("\n")
    lines[150] = 'load{pod="p1"} 1'
    path = tmp_path / "big.om"
    path.write_text("\n".join(lines))
    with pytest.raises(OpenMetricsError, match=rf"^{re.escape(str(path))}:151: sample load has"):
        import_file(_memory_store(clock), path, chunk_bytes=100)


def test_a_line_without_end_is_refused_before_memory_runs_out(
    clock: VirtualClock, tmp_path: Path
) -> None:
    path = tmp_path / "garbage.prom"
    path.write_bytes(b"a 1 1\n" + b"x" * (2 << 20))
    with pytest.raises(OpenMetricsError, match=r"garbage.prom:2: line longer than 1048576 bytes"):
        import_file(_memory_store(clock), path, chunk_bytes=65536)
    empty, _ = _import_file(clock, tmp_path / "empty.prom", "")
    assert empty == {}


def test_an_error_keeps_what_came_before_and_a_second_import_adds_nothing(
    clock: VirtualClock, tmp_path: Path
) -> None:
    lines = _scrapes(10, 300).split("\n")
    good = "\n".join(lines)
    lines[2500] = "load{pod=oops} 1 1"
    path = tmp_path / "broken.om"
    path.write_text("\n".join(lines))
    store = _memory_store(clock, head_max_samples=1000)
    with pytest.raises(OpenMetricsError, match=r":2501: invalid label set") as error:
        import_file(store, path, chunk_bytes=4096)
    kept = re.search(r"\(([\d,]+) samples before it were imported\)$", str(error.value))
    assert kept is not None
    assert 1000 <= int(kept.group(1).replace(",", "")) < 2500
    assert sum(len(v) for v in _contents(store).values()) == int(kept.group(1).replace(",", ""))
    path.write_text(good)
    import_file(store, path, chunk_bytes=4096)
    reference = _memory_store(clock)
    import_text(reference, good, "openmetrics")
    assert _contents(store) == _contents(reference)


def test_samples_in_any_time_order(clock: VirtualClock, tmp_path: Path) -> None:
    stamps = [1700000030, 1700000000, 1700000015, 1690000000, 1700000045]
    text = "".join(f"a {k} {t}\n" for k, t in enumerate(stamps)) + "# EOF\n"
    got, _ = _import_file(clock, tmp_path / "shuffled.om", text)
    assert got == {(("__name__", "a"),): sorted((t * 1000, float(k)) for k, t in enumerate(stamps))}


def test_windows_line_ends(clock: VirtualClock, tmp_path: Path) -> None:
    text = _scrapes(3, 4)
    unix, _ = _import_file(clock, tmp_path / "unix.om", text)
    windows, _ = _import_file(clock, tmp_path / "windows.om", text.replace("\n", "\r\n"))
    assert windows == unix


def test_the_format_is_told_by_the_end_of_the_file(clock: VirtualClock, tmp_path: Path) -> None:
    om, _ = _import_file(clock, tmp_path / "a", "a 1 1700000000\n# EOF\n")
    prom, _ = _import_file(clock, tmp_path / "b", "a 1 1700000000\n")
    assert om == {(("__name__", "a"),): [(1_700_000_000_000, 1.0)]}
    assert prom == {(("__name__", "a"),): [(1_700_000_000, 1.0)]}


_label_values = st.text(st.characters(codec="utf-8"), max_size=12).filter(lambda v: v != "")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    series=st.dictionaries(
        st.tuples(st.sampled_from(["a", "b_total", "c:d"]), _label_values),
        st.lists(
            st.tuples(
                st.integers(-(10**12), 10**13),
                st.floats(allow_nan=True, allow_infinity=True),
            ),
            min_size=1,
            max_size=20,
            unique_by=lambda s: s[0],
        ),
        min_size=1,
        max_size=8,
    ),
    chunk_bytes=st.integers(1, 300),
)
def test_what_is_exported_imports_back_equal(
    series: dict[tuple[str, str], list[tuple[int, float]]],
    chunk_bytes: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    originals = []
    for (name, value), samples in series.items():
        samples.sort()
        labels = (("__name__", name), ("v", value))
        ts = np.array([t for t, _ in samples], np.int64)
        values = np.array([v for _, v in samples])
        keep = ~stale_mask(values)  # staleness markers are not exported
        originals.append(Series(labels, ts[keep], values[keep]))
    folder = tmp_path_factory.mktemp("rt")
    with (folder / "export.om").open("w", encoding="utf-8") as out:
        write_openmetrics(originals, out)
    # The same samples in the Prometheus text format, as Python writes numbers.
    (folder / "export.prom").write_text(
        "".join(
            f"{format_labels(s.labels)} {v!r} {t}\n"
            for s in originals
            for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True)
        ),
        encoding="utf-8",
    )
    for name in ("export.om", "export.prom"):
        store = _memory_store(VirtualClock())
        import_file(store, folder / name, chunk_bytes=chunk_bytes)
        got = {s.labels: s for s in store.select(EVERYTHING, -(2**62), 2**62)}
        assert got.keys() == {s.labels for s in originals if len(s.values)}
        for s in originals:
            if len(s.values):
                assert np.array_equal(got[s.labels].timestamps, s.timestamps)
                assert np.array_equal(got[s.labels].values, s.values, equal_nan=True)


def _promtool_file() -> str:
    """Counters with exemplars and _created samples, histograms, a gauge in two places."""
    lines = []
    for k in range(40):
        t = f"{1700000000 + 15 * k}.000"
        lines += [
            "# TYPE requests counter",
            *(f'requests_total{{pod="p{i}"}} {k * (i + 1)} {t} # {{id="{k}"}} 1' for i in range(3)),
            f'requests_created{{pod="p0"}} 1699990000 {t}',
            "# TYPE latency histogram",
            *(
                f'latency_bucket{{le="{le}"}} {k * j} {t}'
                for j, le in enumerate(["0.1", "1", "+Inf"])
            ),
            f"latency_sum {k * 0.125} {t}",
            f"latency_count {k * 2} {t}",
            "# TYPE temperature gauge",
            f'temperature{{room="a b"}} {20 + math.sin(k)!r} {t}',
        ]
    return "\n".join([*lines, "# EOF", ""])


def test_the_same_samples_as_promtool_imports(clock: VirtualClock, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    path = tmp_path / "scrapes.om"
    path.write_text(_promtool_file())
    blocks = tmp_path / "tsdb"
    run = [promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(blocks)]
    made = subprocess.run(run, check=False, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    (blocks / "wal").mkdir()
    dump = subprocess.run(
        [promtool, "tsdb", "dump", str(blocks)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dump.returncode == 0, dump.stderr
    theirs: Samples = {}
    for line in dump.stdout.splitlines():
        labels_text, value, ts = line.rsplit(" ", 2)
        pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels_text)
        theirs.setdefault(tuple(sorted(pairs)), []).append((int(ts), float(value)))
    # promtool keeps _created samples as series of their own; foresight leaves them out.
    del theirs[(("__name__", "requests_created"), ("pod", "p0"))]
    store = _memory_store(clock)
    warnings: list[str] = []
    import_file(store, path, warn=warnings.append)
    assert _contents(store) == theirs
    assert len(warnings) == 3  # each family comes back for every scrape
