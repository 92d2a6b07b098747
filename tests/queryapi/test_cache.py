"""The range results cache against evaluating every step afresh, and the sharing of
subexpressions by the instant queries of one refresh."""

from __future__ import annotations

import json

import httpx
import pytest

from promql import Engine, QueryResult
from promql.shared import SharedResults
from queryapi import QueryApi, QueryApiSettings
from queryapi.cache import RangeCache, cacheable
from queryapi.encode import EncodedMatrix, series_data
from queryapi.rounds import SharedRounds
from runtime.clock import VirtualClock
from tests.queryapi.conftest import NOW_S, served
from tsdb import Store, StoreSettings

STEP_MS = 30_000
T0_MS = 1_700_000_010_000  # not a multiple of the step: phases are kept apart
HOUR_MS = 3_600_000
FRESH_MS = 120_000
QUERIES = [
    "sum by (job) (rate(req_total[2m]))",
    'mem{job="api"} * on (inst) group_left () max by (inst) (mem{job="db"})',
    "max_over_time(mem[5m:1m])",
    "time() - 0 * scalar(sum(mem))",
]


def _scrape(store: Store, k: int, late: float = 0.0) -> None:
    for job in ("api", "db"):
        for inst in ("0", "1"):
            labels = {"job": job, "inst": inst}
            store.append({"__name__": "req_total", **labels}, T0_MS + k * STEP_MS, 10.0 * k)
            store.append({"__name__": "mem", **labels}, T0_MS + k * STEP_MS, 100 + k % 7 + late)


def _store(scrapes: int) -> Store:
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    for k in range(scrapes):
        _scrape(store, k)
    return store


def _fresh(engine: Engine, text: str, start: int, end: int) -> str:
    series = engine.range(text, start, end, STEP_MS).series
    return f'{{"resultType":"matrix","result":[{series_data(series)}]}}'


def _cached(cache: RangeCache, engine: Engine, text: str, start: int, end: int) -> str:
    matrix, _ = cache.evaluate(engine, text, start, end, STEP_MS, now_ms=end)
    return _text(matrix)


def _text(matrix: EncodedMatrix, limit: int = 0) -> str:
    return b"".join(matrix.data(limit)[0]).decode()


@pytest.mark.parametrize("text", QUERIES)
def test_refreshes_answer_as_a_fresh_evaluation_does(text: str) -> None:
    store = _store(121)
    engine = Engine(store)
    cache = RangeCache(1 << 20, FRESH_MS, lambda: store.generation)
    for k in range(120, 130):  # one refresh per scrape, the window moving along
        end = T0_MS + k * STEP_MS
        got = _cached(cache, engine, text, end - HOUR_MS, end)
        assert json.loads(got) == json.loads(_fresh(engine, text, end - HOUR_MS, end))
        _scrape(store, k + 1)
    assert cache.hits == 9


def test_series_that_come_and_go_are_answered_as_afresh() -> None:
    store = _store(121)
    engine = Engine(store)
    cache = RangeCache(1 << 20, FRESH_MS, lambda: store.generation)
    text = 'mem > 103 or on () up{inst=~"2|3"}'
    for k in range(120, 140):
        end = T0_MS + k * STEP_MS
        got = _cached(cache, engine, text, end - HOUR_MS, end)
        assert got == _fresh(engine, text, end - HOUR_MS, end)
        _scrape(store, k + 1)
        # Series that begin and end between refreshes: the kept and fresh sets differ.
        if k % 3 == 0:
            at = T0_MS + (k + 1) * STEP_MS
            store.append({"__name__": "up", "inst": str(2 + k % 2)}, at, float(k))
    assert cache.hits == 19


class _Counting(Engine):
    """An engine that notes the ranges it evaluates."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.ranges: list[tuple[int, int]] = []

    def range(
        self,
        text: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        shared: SharedResults | None = None,
    ) -> QueryResult:
        self.ranges.append((start_ms, end_ms))
        result = super().range(text, start_ms, end_ms, step_ms, shared)
        self.evaluated()
        return result

    def evaluated(self) -> None:
        """Called after each range evaluation, before its answer is returned."""


def test_an_empty_answer_is_kept_from_its_start() -> None:
    store = _store(121)
    engine = _Counting(store)
    cache = RangeCache(1 << 20, FRESH_MS, lambda: store.generation)
    for k in range(120, 124):
        end = T0_MS + k * STEP_MS
        assert json.loads(_cached(cache, engine, "mem > 1e9", end - HOUR_MS, end))["result"] == []
        # Every refresh evaluates only the steps after the kept ones.
        assert engine.ranges[-1] == (end - (HOUR_MS if k == 120 else FRESH_MS), end)
    assert cache.hits == 3


def test_a_limit_cuts_whole_series() -> None:
    store = _store(121)
    engine = Engine(store)
    cache = RangeCache(1 << 20, FRESH_MS, lambda: store.generation)
    end = T0_MS + 120 * STEP_MS
    matrix, _ = cache.evaluate(engine, "mem", end - HOUR_MS, end, STEP_MS, end)
    assert matrix.data(limit=3)[1]
    assert json.loads(_text(matrix, 3))["result"] == json.loads(_text(matrix))["result"][:3]
    assert not matrix.data(limit=4)[1]
    assert _text(matrix, 4) == _text(matrix)


def test_only_steps_older_than_the_freshness_are_kept() -> None:
    store = _store(121)
    engine = Engine(store)
    cache = RangeCache(1 << 20, FRESH_MS, lambda: store.generation)
    text, end = "max(mem)", T0_MS + 120 * STEP_MS
    _cached(cache, engine, text, end - HOUR_MS, end)
    # Samples arrive late for the newest steps (within the freshness): a refresh sees them.
    for k in range(117, 121):
        _scrape(store, k, late=1000.0)
    got = json.loads(_cached(cache, engine, text, end - HOUR_MS, end))
    assert got == json.loads(_fresh(engine, text, end - HOUR_MS, end))
    assert cache.hits == 1


def test_a_forgetting_store_drops_what_was_kept() -> None:
    store = _store(121)
    engine = Engine(store)
    cache = RangeCache(1 << 20, FRESH_MS, lambda: store.generation)
    end = T0_MS + 120 * STEP_MS
    _cached(cache, engine, "max(mem)", end - HOUR_MS, end)
    store.generation += 1
    _cached(cache, engine, "max(mem)", end - HOUR_MS, end)
    assert (cache.hits, cache.misses) == (0, 2)


def test_the_cache_holds_its_memory_bound() -> None:
    store = _store(121)
    engine = Engine(store)
    cache = RangeCache(20_000, FRESH_MS, lambda: store.generation)
    end = T0_MS + 120 * STEP_MS
    for text in ("max(mem)", "min(mem)", "sum(mem)", "mem", "req_total"):
        _cached(cache, engine, text, end - HOUR_MS, end)
        assert 0 < cache.nbytes <= 20_000
    _cached(cache, engine, "max(mem)", end - HOUR_MS, end)
    assert cache.hits == 0  # the least recently used went first


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("rate(x[5m]) + y offset 1m", True),
        ("rate(x[5m] offset -1m)", False),
        ("y @ start()", False),
        ("max_over_time(y[5m:1m] @ 1700000000)", False),
        ("forecast(y[1h], 300)", False),
        ("y / range()", False),
        ("time() - end()", False),
    ],
)
def test_only_what_reads_up_to_its_step_is_kept(text: str, kept: bool) -> None:
    assert cacheable(text) is kept


def test_range_queries_of_one_refresh_share_a_round() -> None:
    store = _store(121)
    engine = Engine(store)
    cache = RangeCache(1 << 20, FRESH_MS, lambda: store.generation)
    rounds = SharedRounds(engine, 5.0, lambda: store.generation, max_bytes=1 << 20)
    end = T0_MS + 120 * STEP_MS
    texts = ["max by (inst) (mem) * 2", "max by (inst) (mem) + 1"]

    def share(first: int, last: int, step: int) -> SharedResults | None:
        return rounds.for_range(first, last, step, now_s=100.0)

    for text in texts:
        got, _ = cache.evaluate(engine, text, end - HOUR_MS, end, STEP_MS, end, share)
        assert json.loads(_text(got)) == json.loads(_fresh(engine, text, end - HOUR_MS, end))
    shared = share(end - HOUR_MS, end, STEP_MS)
    assert shared is not None and shared.hits >= 1
    # A round holds no more than its budget: a value that does not fit is not kept.
    small = SharedRounds(engine, 5.0, lambda: store.generation, max_bytes=100)
    tight = small.for_range(end - HOUR_MS, end, STEP_MS, now_s=100.0)
    for text in texts:
        engine.range(text, end - HOUR_MS, end, STEP_MS, tight)
    assert tight is not None and tight.hits == 0


def test_instant_queries_of_one_refresh_share_a_round() -> None:
    store = _store(3)
    generation = [0]
    rounds = SharedRounds(Engine(store), 5.0, lambda: generation[0])
    first = rounds.for_time(T0_MS, now_s=100.0)
    assert first is not None
    assert rounds.for_time(T0_MS, now_s=104.0) is first
    assert rounds.for_time(T0_MS + 1, now_s=104.0) is not first
    assert rounds.for_time(T0_MS, now_s=105.0) is not first  # the round is over
    again = rounds.for_time(T0_MS, now_s=105.0)
    generation[0] += 1  # the store forgot series
    assert rounds.for_time(T0_MS, now_s=105.0) is not again
    assert SharedRounds(Engine(store), 0.0, lambda: 0).for_time(T0_MS, 0.0) is None


def _backfill(store: Store, scrapes: range) -> None:
    """The past written after the present, as a history back-fill writes it at start-up."""
    for k in reversed(scrapes):
        _scrape(store, k)


def _late_store(first: int, last: int) -> Store:
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    for k in range(first, last):
        _scrape(store, k)
    return store


@pytest.mark.parametrize("text", QUERIES)
def test_samples_written_into_the_kept_past_are_answered(text: str) -> None:
    store = _late_store(100, 121)
    engine = _Counting(store)
    cache = RangeCache(1 << 20, FRESH_MS, lambda: store.generation)
    store.append_observers.append(cache.written)
    end = T0_MS + 120 * STEP_MS
    _cached(cache, engine, text, end - HOUR_MS, end)
    _backfill(store, range(90, 100))
    got = _cached(cache, engine, text, end - HOUR_MS, end)
    assert json.loads(got) == json.loads(_fresh(engine, text, end - HOUR_MS, end))
    # The steps before the oldest sample written stay kept; only the later ones are evaluated.
    assert engine.ranges[1][0] == T0_MS + 90 * STEP_MS
    assert cache.hits == 1


class _Writing(_Counting):
    """An engine during whose first evaluation the past is written: it reads the store as it
    was before."""

    def __init__(self, store: Store, scrapes: range) -> None:
        super().__init__(store)
        self.written = store
        self.scrapes: range | None = scrapes

    def evaluated(self) -> None:
        if self.scrapes is not None:
            _backfill(self.written, self.scrapes)
            self.scrapes = None


def test_an_answer_evaluated_while_the_past_is_written_keeps_no_step_after_it() -> None:
    store = _late_store(100, 121)
    engine = _Writing(store, range(0, 100))
    cache = RangeCache(1 << 20, FRESH_MS, lambda: store.generation)
    store.append_observers.append(cache.written)
    text, end = "sum by (job) (rate(req_total[2m]))", T0_MS + 120 * STEP_MS
    _cached(cache, engine, text, end - HOUR_MS, end)
    got = _cached(cache, engine, text, end - HOUR_MS, end)
    assert json.loads(got) == json.loads(_fresh(engine, text, end - HOUR_MS, end))


def test_writes_of_the_present_keep_what_was_kept() -> None:
    store = _late_store(100, 121)
    cache = RangeCache(1 << 20, FRESH_MS, lambda: store.generation)
    store.append_observers.append(cache.written)
    end = T0_MS + 120 * STEP_MS
    _cached(cache, Engine(store), "max(mem)", end - HOUR_MS, end)
    _scrape(store, 121)
    assert cache.writes == 0


def test_a_dashboard_opened_during_a_backfill_sees_the_past() -> None:
    store = _late_store(100, 121)
    api = QueryApi(Engine(store), store, QueryApiSettings(), VirtualClock(NOW_S))
    end = T0_MS + 120 * STEP_MS
    text = "sum by (job) (rate(req_total[2m]))"
    form = {
        "query": text,
        "start": (end - HOUR_MS) / 1000,
        "end": end / 1000,
        "step": STEP_MS / 1000,
    }
    engine = Engine(store)
    try:
        with served(api) as url:

            def ask() -> object:
                response = httpx.post(f"{url}/api/v1/query_range", data=form, timeout=30)
                return response.json()["data"]

            before = ask()
            first = api.rounds.for_range(end - HOUR_MS, end, STEP_MS, NOW_S)
            _backfill(store, range(90, 100))
            # A round begun before the past was written is not joined after.
            assert api.rounds.for_range(end - HOUR_MS, end, STEP_MS, NOW_S) is not first
            after = ask()
            assert after != before
            assert after == json.loads(_fresh(engine, text, end - HOUR_MS, end))
        assert store.append_observers == []
    finally:
        store.close()
