"""The query API's own behaviour: limits and their errors, annotations, ``limit``, status and
metadata endpoints, and the parameter and value formats."""

from __future__ import annotations

import asyncio
import math
import threading

import httpx
import pytest
from prometheus_client import CollectorRegistry

from promql import Engine
from queryapi import ApiError, QueryApiSettings, registry_metadata
from queryapi.encode import timestamp_text, value_text
from queryapi.params import MAX_TIME_MS, MIN_TIME_MS, parse_duration_ms, parse_time
from queryapi.runner import QueryRunner, Turns
from runtime.families import FamiliesCollector, Family
from tests.queryapi.conftest import AT_S, END_S, START_S, ServeApi, filled_store


def _get(url: str, path: str, **params: object) -> tuple[int, dict[str, object]]:
    response = httpx.get(f"{url}{path}", params=params, timeout=30)  # type: ignore[arg-type]
    return response.status_code, response.json()


def test_a_query_over_its_timeout_is_a_timeout_error(serve_api: ServeApi) -> None:
    url = serve_api()
    # The engine checks its deadline between nodes: the second operand starts after the first
    # one's work, which takes more than a millisecond.
    slow = " + ".join(["count_over_time(rate(req_total[5m])[1h:1s])"] * 3)
    status, body = _get(url, "/api/v1/query", query=slow, time=AT_S, timeout="1ms")
    assert (status, body["errorType"]) == (503, "timeout"), body
    assert str(body["error"]).startswith("query timed out in expression evaluation")
    # The setting bounds what a request may ask for.
    url = serve_api(timeout_seconds=0.001)
    status, body = _get(url, "/api/v1/query", query=slow, time=AT_S, timeout="1h")
    assert (status, body["errorType"]) == (503, "timeout"), body


def test_too_many_samples_is_an_execution_error(serve_api: ServeApi) -> None:
    url = serve_api(max_samples=100)
    status, body = _get(url, "/api/v1/query", query="sum(mem)", time=AT_S)
    assert status == 200, body
    status, body = _get(url, "/api/v1/query", query="max_over_time(mem[1h])", time=AT_S)
    assert (status, body["errorType"]) == (422, "execution"), body
    assert "too many samples" in str(body["error"])


async def test_a_query_waiting_for_a_slot_past_its_timeout_fails_in_the_queue() -> None:
    store = filled_store()
    runner = QueryRunner(Engine(store), QueryApiSettings(max_concurrent_queries=1))
    release = threading.Event()
    try:
        busy = asyncio.ensure_future(runner.run(lambda _left: release.wait(10), 30))
        await asyncio.sleep(0)  # the first query holds the only slot
        with pytest.raises(ApiError) as caught:
            await runner.run(lambda _left: "never", 0.05)
        assert (caught.value.error_type, caught.value.status) == ("timeout", 503)
        assert caught.value.message == "query timed out in query queue"
        release.set()
        assert await busy is True
        # The slot came back when the thread ended.
        assert await runner.run(lambda left: left > 0, 5) is True
    finally:
        release.set()
        runner.close()
        store.close()


def test_queries_take_turns() -> None:
    now = [100.0]
    turns = Turns(0.2, clock=lambda: now[0])
    first = turns.take(deadline=200.0)
    # One query runs: the next waits until it has run for the patience.
    assert turns.wait(100.05) == pytest.approx(0.15)
    now[0] = 100.2
    second = turns.take(deadline=200.0)
    assert turns.wait(100.25) == pytest.approx(0.15)  # the second one is young
    with pytest.raises(ApiError) as caught:
        turns.take(deadline=100.2)  # due later than its deadline: it never starts
    assert caught.value.message == "query timed out in query queue"
    turns.give_back(first)
    turns.give_back(second)
    assert turns.wait(100.25) == 0.0


async def test_a_query_waits_for_its_turn_within_its_timeout() -> None:
    store = filled_store()
    runner = QueryRunner(Engine(store), QueryApiSettings(max_concurrent_queries=2))
    release, started = threading.Event(), threading.Event()

    def hold(_left: float) -> bool:
        started.set()
        return release.wait(10)

    try:
        busy = asyncio.ensure_future(runner.run(hold, 30))
        assert await asyncio.to_thread(started.wait, 10)  # the first query has its turn
        with pytest.raises(ApiError) as caught:
            await runner.run(lambda _left: "never", 0.05)
        assert caught.value.message == "query timed out in query queue"
        release.set()
        assert await busy is True
    finally:
        release.set()
        runner.close()
        store.close()


def test_limit_truncates_with_a_warning(serve_api: ServeApi) -> None:
    url = serve_api()
    status, body = _get(url, "/api/v1/query", query="mem", time=AT_S, limit=2)
    assert status == 200
    assert len(body["data"]["result"]) == 2  # type: ignore[index]
    assert body["warnings"] == ["results truncated due to limit"]
    status, body = _get(
        url, "/api/v1/query_range", query="mem", start=START_S, end=END_S, step=60, limit=1
    )
    assert len(body["data"]["result"]) == 1  # type: ignore[index]
    status, body = _get(url, "/api/v1/series", **{"match[]": "mem", "limit": 4})
    assert len(body["data"]) == 4 and body["warnings"] == ["results truncated due to limit"]  # type: ignore[arg-type]
    status, body = _get(url, "/api/v1/label/__name__/values", limit=1)
    assert body["data"] == ["huge"]
    status, body = _get(url, "/api/v1/labels", limit=-1)
    assert (status, body["error"]) == (400, 'invalid parameter "limit": limit must be non-negative')


def test_warnings_and_infos_come_from_the_engine(serve_api: ServeApi) -> None:
    url = serve_api()
    _, body = _get(url, "/api/v1/query", query="rate(mem[5m])", time=AT_S)
    assert body["infos"] == [
        "PromQL info: metric might not be a counter, name does not end in "
        '_total/_sum/_count/_bucket: "mem" (1:6)'
    ]
    assert "warnings" not in body
    _, body = _get(url, "/api/v1/query", query="quantile(2, mem)", time=AT_S)
    assert body["warnings"] == [
        "PromQL warning: quantile value should be between 0 and 1, got 2 (1:1)"
    ]


def test_status_and_metadata(serve_api: ServeApi) -> None:
    registry = CollectorRegistry()
    family = Family("foresight_things_total", "counter", "Things seen.")
    family.add(3, kind="a")
    gauge = Family("foresight_level", "gauge", "A level.")
    registry.register(FamiliesCollector(lambda: [family, gauge]))
    url = serve_api(
        config=lambda: "store:\n  data_dir: /data\n", metadata=registry_metadata(registry)
    )
    _, body = _get(url, "/api/v1/metadata")
    assert body["data"] == {
        "foresight_things_total": [{"type": "counter", "help": "Things seen.", "unit": ""}],
        "foresight_level": [{"type": "gauge", "help": "A level.", "unit": ""}],
    }
    _, body = _get(url, "/api/v1/metadata", metric="foresight_level")
    assert list(body["data"]) == ["foresight_level"]  # type: ignore[call-overload]
    _, body = _get(url, "/api/v1/metadata", limit=1)
    assert len(body["data"]) == 1  # type: ignore[arg-type]
    _, body = _get(url, "/api/v1/status/config")
    assert body["data"] == {"yaml": "store:\n  data_dir: /data\n"}
    _, body = _get(url, "/api/v1/status/runtimeinfo")
    info = body["data"]
    assert isinstance(info, dict)
    assert info["startTime"] == "2023-11-15T00:13:20Z" and info["corruptionCount"] == 0
    _, body = _get(url, "/api/v1/status/buildinfo")
    assert isinstance(body["data"], dict) and body["data"]["version"]


def test_the_default_time_is_the_clock(serve_api: ServeApi) -> None:
    url = serve_api()
    _, body = _get(url, "/api/v1/query", query="time()")
    assert body["data"] == {"resultType": "scalar", "result": [1700007200, "1700007200"]}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "-0"),
        (0.1, "0.1"),
        (1e-5, "0.00001"),
        (1.5e-7, "1.5e-07"),
        (1e-6, "0.000001"),
        (1.2345678901234568e16, "12345678901234568"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_values_print_as_go_prints_them(value: float, text: str) -> None:
    assert value_text(value) == text


def test_times_and_durations() -> None:
    assert timestamp_text(1_435_781_451_781) == "1435781451.781"
    assert timestamp_text(1_500) == "1.500" and timestamp_text(-1_500) == "-1.500"
    assert parse_time("1435781451.7815") == 1_435_781_451_782
    assert parse_time("-1.5") == -1_500
    assert parse_time("2015-07-01T20:10:51.781Z") == 1_435_781_451_781
    assert parse_time("2015-07-01T22:10:51+02:00") == 1_435_781_451_000
    assert parse_time("-292273086-05-16T16:47:06Z") == MIN_TIME_MS
    assert parse_time("292277025-08-18T07:12:54.999999999Z") == MAX_TIME_MS
    assert parse_duration_ms("1h30m") == 5_400_000
    assert parse_duration_ms("0.25") == 250
    assert parse_duration_ms("1d") == 86_400_000
    for bad in ("", "1 h", "x", "2015-07-01"):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)
    with pytest.raises(ValueError, match='cannot parse "soon" to a valid timestamp'):
        parse_time("soon")
