"""The requests Grafana's Prometheus data source sends (httpMethod POST, its default), as it
shapes them: the buildinfo probe and the ``1+1`` health check of "Save & test", panel queries
as form-encoded POSTs with whole-second ``start``/``end``/``step`` and a ``timeout``, template
variables through ``label/<name>/values`` with ``match[]``, the query editor's metric and label
lists, metadata and exemplars. Then every query of the six dashboards, with its variables at
"All", as Grafana would send it (the queries ``bench.promapi`` times)."""

from __future__ import annotations

from typing import Any

import httpx

from bench.promapi import panel_queries
from tests.queryapi.conftest import END_S, START_S, ServeApi

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def test_save_and_test(serve_api: ServeApi) -> None:
    url = serve_api()
    info = _ok(httpx.get(f"{url}/api/v1/status/buildinfo"))
    assert info["version"] and "features" not in info  # Prometheus, not Mimir/Cortex
    health = httpx.post(
        f"{url}/api/v1/query", content=f"query=1%2B1&time={END_S:.0f}", headers=FORM
    )
    assert _ok(health) == {"resultType": "scalar", "result": [int(END_S), "2"]}


def test_panel_query_as_grafana_posts_it(serve_api: ServeApi) -> None:
    url = serve_api()
    start, end = int(START_S) // 60 * 60, int(END_S) // 60 * 60
    body = (
        "query=sum+by+%28job%29+%28rate%28req_total%7Bjob%3D~%22.%2A%22%7D%5B1m%5D%29%29"
        f"&start={start}&end={end}&step=60&timeout=60s"
    )
    data = _ok(httpx.post(f"{url}/api/v1/query_range", content=body, headers=FORM))
    assert data["resultType"] == "matrix"
    assert {s["metric"]["job"] for s in data["result"]} == {"api", "db"}
    assert all(len(s["values"]) == (end - start) // 60 + 1 for s in data["result"])
    instant = _ok(
        httpx.post(f"{url}/api/v1/query", content=f"query=count%28mem%29&time={end}", headers=FORM)
    )
    assert instant["result"][0]["value"] == [end, "6"]


def test_variables_and_query_editor(serve_api: ServeApi) -> None:
    url = serve_api()
    window = {"start": f"{START_S:.0f}", "end": f"{END_S:.0f}"}
    values = httpx.get(
        f"{url}/api/v1/label/inst/values", params={"match[]": 'mem{job=~"db"}', **window}
    )
    assert _ok(values) == ["0", "1", "2"]
    names = _ok(httpx.get(f"{url}/api/v1/label/__name__/values", params=window))
    assert names == ["huge", "lat_bucket", "mem", "req_total", "tiny"]
    labels = _ok(httpx.get(f"{url}/api/v1/labels", params={"match[]": "lat_bucket", **window}))
    assert labels == ["__name__", "job", "le"]
    series = httpx.post(
        f"{url}/api/v1/series",
        content=f"match%5B%5D=mem%7Binst%3D%220%22%7D&start={window['start']}&end={window['end']}",
        headers=FORM,
    )
    assert _ok(series) == [
        {"__name__": "mem", "inst": "0", "job": "api"},
        {"__name__": "mem", "inst": "0", "job": "db"},
    ]
    assert _ok(httpx.get(f"{url}/api/v1/metadata")) == {}
    exemplars = httpx.post(
        f"{url}/api/v1/query_exemplars",
        content=f"query=mem&start={window['start']}&end={window['end']}",
        headers=FORM,
    )
    assert _ok(exemplars) == []


def test_every_dashboard_query_is_answered(serve_api: ServeApi) -> None:
    url = serve_api()
    queries = panel_queries(scrape_s=15, step_s=30, range_s=END_S - START_S)
    assert len(queries) > 100
    failed = []
    window = {"start": f"{START_S:.0f}", "end": f"{END_S:.0f}", "step": "30"}
    with httpx.Client(base_url=url) as client:
        for q in queries:
            if q.instant:
                response = client.post(
                    "/api/v1/query", data={"query": q.expr, "time": window["end"]}
                )
            else:
                response = client.post("/api/v1/query_range", data={"query": q.expr, **window})
            if response.status_code != 200:
                failed.append(f"{q.dashboard}: {q.panel}: {response.status_code} {response.text}")
    assert not failed, "\n".join(failed)
