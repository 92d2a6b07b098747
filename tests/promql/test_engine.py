"""The evaluator's behaviour at its edges: errors, limits, staleness, forecast, CLI."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from autoscaler.cli.main import main
from promql import (
    Engine,
    EvaluationError,
    LimitExceeded,
    ParseError,
    PromQLSettings,
    QueryTimeout,
)
from tsdb import STALE_NAN, Matcher, Series, Store

MemoryStore = Callable[..., Store]

MIN = 60_000


def _counter(memory_store: MemoryStore, n: int = 30) -> Engine:
    samples = [
        ({"__name__": "req_total", "pod": p}, t * MIN, t * k)
        for t in range(n)
        for p, k in (("a", 1.0), ("b", 2.0))
    ]
    return Engine(memory_store(samples))


def test_parse_error_names_the_query_and_the_parser_message(memory_store: MemoryStore) -> None:
    with pytest.raises(ParseError, match=r"parse error in 'rate\(foo\)': expected type matrix"):
        _counter(memory_store).instant("rate(foo)", 0)


def test_unknown_function_is_a_parse_error(memory_store: MemoryStore) -> None:
    with pytest.raises(ParseError, match="unknown function with name 'rat'"):
        _counter(memory_store).instant("rat(req_total[5m])", 0)


def test_series_limit(memory_store: MemoryStore) -> None:
    engine = Engine(_counter(memory_store).querier, PromQLSettings(max_series=1))
    with pytest.raises(LimitExceeded, match="selects 2 series, more than max_series=1"):
        engine.instant("req_total", 10 * MIN)


def test_sample_limit(memory_store: MemoryStore) -> None:
    engine = Engine(_counter(memory_store).querier, PromQLSettings(max_samples=10))
    with pytest.raises(LimitExceeded, match="more than max_samples=10"):
        engine.instant("sum_over_time(req_total[1h])", 29 * MIN)


def test_timeout(memory_store: MemoryStore) -> None:
    engine = Engine(_counter(memory_store).querier, PromQLSettings(timeout_seconds=1e-9))
    with pytest.raises(QueryTimeout, match="timed out"):
        engine.instant("req_total", 10 * MIN)


def test_lookback_window_is_open_on_the_left(memory_store: MemoryStore) -> None:
    engine = Engine(memory_store([({"__name__": "g"}, 0, 1.0)]))
    assert len(engine.instant("g", 5 * MIN - 1).series) == 1
    assert engine.instant("g", 5 * MIN).series == []


def test_staleness_marker_ends_a_series(memory_store: MemoryStore) -> None:
    engine = Engine(
        memory_store([({"__name__": "g"}, 0, 1.0), ({"__name__": "g"}, MIN, STALE_NAN)])
    )
    assert len(engine.instant("g", 30_000).series) == 1
    assert engine.instant("g", 90_000).series == []


def test_range_window_is_open_on_the_left(memory_store: MemoryStore) -> None:
    result = _counter(memory_store, 61).instant('count_over_time(req_total{pod="a"}[1h])', 60 * MIN)
    assert result.series[0].values[0] == 60


def test_rate_and_name_dropping(memory_store: MemoryStore) -> None:
    result = _counter(memory_store).instant("rate(req_total[5m])", 20 * MIN)
    values = {dict(s.labels)["pod"]: float(s.values[0]) for s in result.series}
    assert values == pytest.approx({"a": 1 / 60, "b": 2 / 60})
    assert all("__name__" not in dict(s.labels) for s in result.series)


def test_range_query_steps(memory_store: MemoryStore) -> None:
    result = _counter(memory_store).range('req_total{pod="a"} * 2', 0, 10 * MIN, 5 * MIN)
    assert result.type == "matrix"
    assert result.series[0].values.tolist() == [0.0, 10.0, 20.0]


def test_many_to_many_error(memory_store: MemoryStore) -> None:
    with pytest.raises(EvaluationError, match="many-to-many matching not allowed"):
        _counter(memory_store).instant("req_total + on() req_total", 10 * MIN)


def test_negative_at_timestamp_is_read_from_the_text(memory_store: MemoryStore) -> None:
    engine = Engine(memory_store([({"__name__": "g"}, -60_000, 7.0)]))
    assert engine.instant("g @ -30", 10 * MIN).series[0].values[0] == 7.0


def test_forecast_without_a_model_fails_naming_the_function(memory_store: MemoryStore) -> None:
    engine = _counter(memory_store)
    with pytest.raises(EvaluationError, match=r"forecast\(\) needs a forecasting model; none"):
        engine.instant('forecast(req_total{pod="b"}[10m], 600)', 29 * MIN)
    # Even with nothing to forecast: a missing model shows at once, not when data comes.
    with pytest.raises(EvaluationError, match="none is configured: forecast"):
        engine.instant("forecast(nothing[10m], 600)", 29 * MIN)


class _Recorder:
    """A forecaster: the newest value + the horizon; None for the constant 0.5 (series h)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], list[float], int, float]] = []

    def __call__(
        self, timestamps_ms: np.ndarray, values: np.ndarray, at_ms: int, horizon_seconds: float
    ) -> float | None:
        self.calls.append((timestamps_ms.tolist(), values.tolist(), at_ms, horizon_seconds))
        return None if values[-1] == 0.5 else float(values[-1]) + horizon_seconds


def test_forecast_asks_the_engines_forecaster_per_series_and_step(
    memory_store: MemoryStore,
) -> None:
    store = memory_store(
        [
            ({"__name__": "g", "pod": p}, t * MIN, v + t)
            for t in range(10)
            for p, v in (("a", 0.5), ("b", 0.0))
        ]
        + [({"__name__": "h"}, t * MIN, 0.5) for t in range(10)]
    )
    recorder = _Recorder()
    engine = Engine(store, forecaster=recorder)
    result = engine.instant("forecast(g[3m], 60)", 9 * MIN)
    # The window (6m, 9m] of each series, the step's time and the horizon.
    assert sorted(recorder.calls) == [
        ([7 * MIN, 8 * MIN, 9 * MIN], [7.0, 8.0, 9.0], 9 * MIN, 60.0),
        ([7 * MIN, 8 * MIN, 9 * MIN], [7.5, 8.5, 9.5], 9 * MIN, 60.0),
    ]
    assert [(dict(s.labels), s.values.tolist()) for s in result.series] == [
        ({"pod": "a"}, [69.5]),
        ({"pod": "b"}, [69.0]),
    ]
    # None: absent at that step; a subquery's steps reach the same forecaster.
    assert engine.instant("forecast(h[3m], 60)", 9 * MIN).series == []
    ranged = engine.range("forecast(g[2m:1m], 60)", 5 * MIN, 6 * MIN, MIN)
    assert [s.values.tolist() for s in ranged.series] == [[65.5, 66.5], [65.0, 66.0]]
    assert engine.with_settings(PromQLSettings(max_series=9)).forecaster is recorder


def test_every_shared_rule_evaluates(memory_store: MemoryStore, rules_dir: Path) -> None:
    engine = _counter(memory_store)
    count = 0
    for path in sorted(rules_dir.glob("*/*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                engine.instant(rule["expr"], 29 * MIN)
                count += 1
    assert count > 300


def test_cli_promql_test_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "a.test"
    case.write_text(
        "load 1m\n  f 1 2 3\n\neval instant at 2m f\n  f 3\n\neval instant at 2m f\n  f 4\n"
    )
    code = main(["promql", "test", str(case)])
    out = capsys.readouterr().out
    assert code == 1
    assert out.strip().endswith("1 passed, 1 failed, 0 skipped")
    assert "expected [4.0], got [3.0]" in out


def test_cli_promql_query_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    om = tmp_path / "in.om"
    om.write_text('# TYPE up unknown\nup{job="a"} 1 60.000\nup{job="a"} 0 120.000\n# EOF\n')
    monkeypatch.setenv("FORESIGHT_STORE__DATA_DIR", str(tmp_path / "data"))
    assert main(["store", "import", str(om)]) == 0
    capsys.readouterr()
    assert main(["promql", "query", "sum(up)", "--time", "150", "--output", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["data"] == {"resultType": "vector", "result": [{"metric": {}, "value": [150, "0"]}]}
    assert main(["promql", "query", "up", "--start", "60", "--end", "120", "--step", "60"]) == 0
    table = capsys.readouterr().out
    assert 'up{job="a"}' in table and "120.000" in table


def test_nan_survives_arithmetic(memory_store: MemoryStore) -> None:
    engine = Engine(memory_store([({"__name__": "g"}, 0, math.nan)]))
    assert math.isnan(engine.instant("g + 1", 0).series[0].values[0])


class _SeriesOnly:
    """A querier that hands over one array per series, as a remote source would."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        return self.store.select(matchers, start_ms, end_ms)


def test_columns_and_per_series_selection_agree(memory_store: MemoryStore) -> None:
    # Steps longer than the lookback, so a node's old zone is gone when the new one comes.
    step = 10 * MIN
    samples = [
        ({"__name__": "up", "pod": f"p{i}", "node": f"n{i % 3}"}, t * step, float(i + t))
        for t in range(10)
        for i in range(7)
        if (i + t) % 4
    ]
    samples += [
        ({"__name__": "node_info", "node": f"n{i}", "zone": f"z{(i + t // 5) % 2}"}, t * step, 1.0)
        for t in range(10)
        for i in range(3)
    ]
    store = memory_store(samples)
    query = "up * on (node) group_left (zone) node_info or rate(up[30m]) unless up > 5"
    a = Engine(store).range(query, 0, 9 * step, step)
    b = Engine(_SeriesOnly(store)).range(query, 0, 9 * step, step)
    assert [s.labels for s in a.series] == [s.labels for s in b.series]
    for x, y in zip(a.series, b.series, strict=True):
        np.testing.assert_array_equal(x.timestamps, y.timestamps)
        np.testing.assert_array_equal(x.values, y.values)
    # The copied zone changes half-way: rows split by what they copy.
    assert {dict(s.labels).get("zone") for s in a.series} == {"z0", "z1", None}


def _containers(
    memory_store: MemoryStore, series: list[tuple[str, str, str]], nodes: dict[str, str]
) -> Engine:
    """cAdvisor-like series that carry a node (pod, container, node), and pods' nodes as
    kube_pod_info has them (``nodes``: pod -> node)."""
    samples = [
        ({"__name__": "mem", "pod": p, "container": c, "node": n}, 0, 1.0) for p, c, n in series
    ]
    samples += [({"__name__": "info", "pod": p, "node": n}, 0, 1.0) for p, n in nodes.items()]
    return Engine(memory_store(samples))


@pytest.mark.parametrize("node", ["n1", "n3"])
def test_a_copied_label_that_makes_rows_equal_is_an_error(
    memory_store: MemoryStore, node: str
) -> None:
    # Pod a's container x on two nodes (a pod of that name rescheduled): copying the pod's
    # node onto both makes them one label set, as Prometheus reports, whether it is one of
    # the nodes they had or another.
    engine = _containers(memory_store, [("a", "x", "n1"), ("a", "x", "n2")], {"a": node})
    with pytest.raises(EvaluationError, match="grouping labels must ensure unique matches"):
        engine.instant("mem * on (pod) group_left (node) info", 0)


@pytest.mark.parametrize("nodes", [{"a": "n1", "b": "n2"}, {"a": "n4", "b": "n5"}])
def test_copied_labels_keep_distinct_rows_distinct(
    memory_store: MemoryStore, nodes: dict[str, str]
) -> None:
    # The nodes the series carry, or others.
    series = [("a", "x", "n1"), ("a", "y", "n1"), ("b", "x", "n2")]
    engine = _containers(memory_store, series, nodes)
    result = engine.instant("mem * on (pod) group_left (node) info", 0)
    got = sorted(
        (dict(s.labels)["pod"], dict(s.labels)["container"], dict(s.labels)["node"])
        for s in result.series
    )
    assert got == [("a", "x", nodes["a"]), ("a", "y", nodes["a"]), ("b", "x", nodes["b"])]
    assert all("__name__" not in dict(s.labels) for s in result.series)
