"""foresight's API and a real Prometheus (Debian's 2.42) holding the same samples answer the
same requests with the same JSON, up to the last bits of floats: queries (GET and form POST),
series, label names and values, exemplars, metadata, and the errors of bad requests (status,
``errorType`` and message)."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from tests.queryapi.conftest import AT_S, END_S, START_S

INSTANT = [
    "req_total",
    "mem",
    "rate(req_total[5m])",
    "sum by (job) (rate(req_total[5m]))",
    "topk(2, mem)",
    "histogram_quantile(0.9, rate(lat_bucket[10m]))",
    "mem[2m]",
    "scalar(sum(mem))",
    "1 + 1",
    '"a string"',
    "tiny",
    "huge",
    "mem > 10000",
    "nothing_here",
    "avg_over_time(mem[10m]) / 3",
    "count by (job) (mem)",
]
RANGE = [
    "rate(req_total[5m])",
    "sum by (job) (mem)",
    "tiny * 10",
    "huge",
    "vector(3)",
    "time()",
]


def _close(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    return x == y or math.isclose(x, y, rel_tol=1e-9) or (math.isnan(x) and math.isnan(y))


def _normal(body: dict[str, Any]) -> dict[str, Any]:
    """The answer with series keyed by their labels (Prometheus does not order an instant
    vector) and values as floats compared later."""
    data = body.get("data")
    if isinstance(data, dict) and data.get("resultType") in ("vector", "matrix"):
        data = {**data, "result": sorted(data["result"], key=lambda s: sorted(s["metric"].items()))}
        body = {**body, "data": data}
    return body


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(_same(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(
            _same(a, b) for a, b in zip(ours, theirs, strict=True)
        )
    if isinstance(ours, str) and isinstance(theirs, str) and ours != theirs:
        try:
            return _close(ours, theirs)
        except ValueError:
            return False
    return bool(ours == theirs)


def _ask(url: str, method: str, path: str, params: dict[str, Any] | list[tuple[str, str]]) -> Any:
    if method == "POST":
        form: dict[str, list[str]] = {}
        for key, value in params.items() if isinstance(params, dict) else params:
            form.setdefault(key, []).append(str(value))
        response = httpx.post(f"{url}{path}", data=form, timeout=30)
    else:
        response = httpx.get(f"{url}{path}", params=params, timeout=30)
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.status_code, _normal(response.json())


def _compare(both: tuple[str, str], method: str, path: str, params: Any) -> Any:
    ours, theirs = both
    mine, reference = _ask(ours, method, path, params), _ask(theirs, method, path, params)
    assert mine[0] == reference[0], f"status\nours:   {mine}\ntheirs: {reference}"
    assert _same(mine[1], reference[1]), f"{path} {params}\nours:   {mine}\ntheirs: {reference}"
    return mine[1]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("query", INSTANT)
def test_instant_queries(both: tuple[str, str], query: str, method: str) -> None:
    body = _compare(both, method, "/api/v1/query", {"query": query, "time": AT_S})
    assert body["status"] == "success"


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("query", RANGE)
def test_range_queries(both: tuple[str, str], query: str, method: str) -> None:
    params = {"query": query, "start": START_S, "end": END_S, "step": "2m"}
    body = _compare(both, method, "/api/v1/query_range", params)
    assert body["data"]["resultType"] == "matrix"


def test_times_as_rfc3339_and_steps_as_seconds(both: tuple[str, str]) -> None:
    params = {
        "query": "sum(mem)",
        "start": "2023-11-14T22:13:21.5Z",
        "end": "2023-11-14T23:13:20+00:00",
        "step": "90",
    }
    _compare(both, "GET", "/api/v1/query_range", params)


@pytest.mark.parametrize(
    "time", [f"{AT_S + 0.1235:.4f}", f"{AT_S - 0.0004:.4f}", "2023-11-15T01:53:20.123456+02:00"]
)
def test_fractional_and_zoned_times(both: tuple[str, str], time: str) -> None:
    body = _compare(
        both, "GET", "/api/v1/query", {"query": "timestamp(mem) - time()", "time": time}
    )
    assert body["data"]["result"]


@pytest.mark.parametrize(
    "params",
    [
        [("match[]", "mem")],
        [("match[]", 'req_total{job="api"}'), ("match[]", "lat_bucket")],
        [("match[]", '{job=~"d.*"}'), ("start", str(START_S)), ("end", str(END_S))],
        [("match[]", '{__name__=~"m.*|t.*"}'), ("start", "2023-11-14T22:00:00Z")],
    ],
)
def test_series(both: tuple[str, str], params: list[tuple[str, str]]) -> None:
    body = _compare(both, "GET", "/api/v1/series", params)
    assert body["data"]
    _compare(both, "POST", "/api/v1/series", params)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/labels", []),
        ("/api/v1/labels", [("match[]", "lat_bucket")]),
        ("/api/v1/labels", [("match[]", "mem"), ("match[]", "huge")]),
        ("/api/v1/label/job/values", []),
        ("/api/v1/label/__name__/values", []),
        ("/api/v1/label/inst/values", [("match[]", 'mem{job="db"}')]),
        ("/api/v1/label/le/values", [("match[]", "lat_bucket"), ("start", str(START_S))]),
        ("/api/v1/label/nope/values", []),
    ],
)
def test_labels_and_values(both: tuple[str, str], path: str, params: list[tuple[str, str]]) -> None:
    _compare(both, "GET", path, params)


def test_exemplars_metadata_and_format(both: tuple[str, str]) -> None:
    params = {"query": "rate(req_total[5m])", "start": START_S, "end": END_S}
    _compare(both, "POST", "/api/v1/query_exemplars", params)
    _compare(both, "GET", "/api/v1/metadata", {})
    _compare(both, "GET", "/api/v1/format_query", {"query": "sum(rate(req_total[5m]))by(job)"})


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/query", {"query": "sum(", "time": AT_S}),
        ("/api/v1/query", {"query": "mem", "time": "yesterday"}),
        ("/api/v1/query", {"query": "mem", "timeout": "soon"}),
        ("/api/v1/query_range", {"query": "mem", "start": END_S, "end": START_S, "step": 60}),
        ("/api/v1/query_range", {"query": "mem", "start": START_S, "end": END_S, "step": 0}),
        ("/api/v1/query_range", {"query": "mem", "start": START_S, "end": END_S, "step": "x"}),
        ("/api/v1/query_range", {"query": "mem", "end": END_S, "step": 60}),
        ("/api/v1/query_range", {"query": "mem", "start": 0, "end": END_S, "step": 1}),
        ("/api/v1/query_range", {"query": "mem[5m]", "start": START_S, "end": END_S, "step": 60}),
        ("/api/v1/series", {}),
        ("/api/v1/series", {"match[]": '{job=""}'}),
        ("/api/v1/series", {"match[]": "mem", "end": "never"}),
        ("/api/v1/label/1bad/values", {}),
        ("/api/v1/metadata", {"limit": "some"}),
        ("/api/v1/query_exemplars", {"query": "mem", "start": END_S, "end": START_S}),
    ],
)
def test_errors(both: tuple[str, str], path: str, params: dict[str, Any]) -> None:
    ours, theirs = both
    mine, reference = _ask(ours, "GET", path, params), _ask(theirs, "GET", path, params)
    assert mine[0] == reference[0], f"ours: {mine}\ntheirs: {reference}"
    assert mine[1]["errorType"] == reference[1]["errorType"]
    if "sum(" not in str(params):  # parse messages are the parser's own
        assert mine[1]["error"] == reference[1]["error"]


@pytest.mark.parametrize("query", ["tiny", "huge", "mem[2m]", "req_total"])
def test_stored_values_print_as_prometheus_prints_them(both: tuple[str, str], query: str) -> None:
    """Raw samples go through no arithmetic: their text must be Go's, byte for byte."""
    ours, theirs = both
    mine = _ask(ours, "GET", "/api/v1/query", {"query": query, "time": AT_S})[1]
    reference = _ask(theirs, "GET", "/api/v1/query", {"query": query, "time": AT_S})[1]
    assert mine == reference
