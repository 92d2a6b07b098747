"""Fuzzing ``store import``'s reader: text near a valid file, in pieces of any size, is either
imported or refused with an error naming a line of the file, never another exception."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.clock import VirtualClock
from tests.fuzz.mutations import texts_near
from tsdb import Store, StoreSettings
from tsdb.openmetrics import OpenMetricsError, import_file
from tsdb.textstream import TextFormat

OPENMETRICS = """\
# HELP http_requests Requests.
# TYPE http_requests counter
http_requests_total{method="post",code="200"} 1027 1395066363.000 # {id="a"} 1 1395066363
http_requests_created{method="post",code="200"} 1395066000 1395066363.5
http_requests_total{method="post",code="400",path="a\\"b\\\\c\\n"} 3 1395066363
# TYPE latency histogram
# UNIT latency seconds
latency_bucket{le="0.5"} +Inf 1395066363
latency_bucket{le="+Inf"} NaN 1395066363
latency_sum -1.5e-3 1395066363
# EOF
"""
PROMETHEUS = """\
# HELP rpc_seconds RPC latency.
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.25 1395066363000

rpc_seconds_sum 17 1395066363000
  spaced { path = "/a b}#{" , }   +Inf    1395066363001
# TYPE rpc_seconds summary
rpc_seconds_count 40 -1
"""
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def _import(text: str, text_format: TextFormat, chunk_bytes: int) -> int:
    """Samples imported, or -1 after an error naming a line."""
    store = Store(StoreSettings(), VirtualClock(), persistent=False)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.txt"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            return import_file(store, path, text_format, chunk_bytes=chunk_bytes).samples
        except OpenMetricsError as e:
            m = re.match(rf"{re.escape(str(path))}:(\d+): .", str(e))
            assert m is not None, str(e)
            assert 1 <= int(m.group(1)) <= text.count("\n") + 1
            return -1


@FUZZ
@given(texts_near(OPENMETRICS), st.integers(1, 200))
def test_openmetrics_near_a_valid_file(text: str, chunk_bytes: int) -> None:
    _import(text, "openmetrics", chunk_bytes)


@FUZZ
@given(texts_near(PROMETHEUS), st.integers(1, 200))
def test_prometheus_text_near_a_valid_file(text: str, chunk_bytes: int) -> None:
    _import(text, "prometheus", chunk_bytes)


def test_the_seed_files_import() -> None:
    assert _import(OPENMETRICS, "openmetrics", 7) == 5  # without the _created sample
    assert _import(PROMETHEUS, "prometheus", 7) == 4
