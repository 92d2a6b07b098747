"""Fuzzing Prometheus' query API over a real local server: any parameters, by GET or
form-encoded POST, are answered with Prometheus' JSON (success, or an error with its
``errorType``: 400 ``bad_data``, 422 ``execution``, 503 ``timeout``), never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from promql import Engine
from queryapi import QueryApi, QueryApiSettings
from runtime.clock import VirtualClock
from tests.queryapi.conftest import AT_S, END_S, NOW_S, START_S, filled_store, served

QUERIES = [
    "req_total",
    'sum by (job) (rate(req_total{job=~"a.*"}[5m]))',
    "histogram_quantile(0.9, rate(lat_bucket[5m]))",
    "mem offset 1h",
    "1/0",
    'label_replace(mem, "x", "$1", "inst", "(.*)")',
    "topk(2, mem) and on(job) mem",
    "req_total[5m:1m]",
    "",
    "sum(",
    "{}",
    '{__name__=~".*"}',
]
TIMES = [str(AT_S), str(START_S), str(END_S), "2023-11-14T22:13:20Z", "1e20", "-1", "nan", "5m"]
DURATIONS = ["15", "1m", "0", "-5", "0.001", "1y", "abc", "1e9"]
PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "query": st.sampled_from(QUERIES) | st.text(max_size=20),
        "time": st.sampled_from(TIMES) | st.text(max_size=8),
        "start": st.sampled_from(TIMES) | st.text(max_size=8),
        "end": st.sampled_from(TIMES) | st.text(max_size=8),
        "step": st.sampled_from(DURATIONS) | st.text(max_size=6),
        "timeout": st.sampled_from(DURATIONS) | st.text(max_size=6),
        "limit": st.sampled_from(["0", "1", "-1", "x", "99999999999999999999"]),
        "match[]": st.sampled_from(["mem", "{job=", '{job="api"}', ""]) | st.text(max_size=8),
    },
)
PATHS = ["query", "query_range", "series", "labels", "label/job/values", "format_query"]
# As in Prometheus, label values are only read with GET (POST is a 405).
GET_ONLY = {"label/job/values"}
ERRORS = {400: "bad_data", 422: "execution", 503: "timeout"}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    store = filled_store()
    api = QueryApi(Engine(store), store, QueryApiSettings(timeout_seconds=5), VirtualClock(NOW_S))
    with served(api) as base:
        yield base
    store.close()


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(path=st.sampled_from(PATHS), params=PARAMS, post=st.booleans())
@example(
    path="query_range",
    params={"query": "mem", "start": "0", "end": "1e10", "step": "1"},
    post=False,
)
@example(path="query", params={"query": "a" * 5000}, post=True)
def test_any_parameters_get_prometheus_json_never_a_500(
    url: str, path: str, params: dict[str, str], post: bool
) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        if post and path not in GET_ONLY:
            answer = client.post(f"/api/v1/{path}", data=params)
        else:
            answer = client.get(f"/api/v1/{path}", params=params)
    assert answer.status_code in (200, *ERRORS), answer.text[:300]
    body = answer.json()
    if answer.status_code == 200:
        assert body["status"] == "success"
    else:
        assert body["status"] == "error"
        assert body["errorType"] == ERRORS[answer.status_code], body
        assert body["error"]
