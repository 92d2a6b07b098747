"""Prometheus' HTTP API v1 over the live store: the handlers and the routes to mount.

:class:`QueryApi` answers ``/api/v1/query``, ``query_range`` (GET, or POST with a form body),
``series``, ``labels``, ``label/<name>/values``, ``metadata``, ``query_exemplars`` (always
empty: the store keeps no exemplars), ``format_query`` and ``status/buildinfo``,
``status/runtimeinfo`` and ``status/config``, with Prometheus' parameters, JSON and errors.
Handlers only read parameters; queries and index lookups run on the query threads of
:class:`~queryapi.runner.QueryRunner`, which also encodes their answers.

Every route only reads: :attr:`QueryApi.verbs` says so per route, for the authorisation in
front of it.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import promql_parser
from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from promql import Engine, ParseError, parse
from promql.context import Annotations
from promql.selection import select, strings_for
from promql.shared import SharedResults
from queryapi import params
from queryapi.cache import RangeCache
from queryapi.encode import EncodedMatrix, query_data, success, success_json
from queryapi.errors import ApiError, invalid_parameter
from queryapi.metadata import MetadataSource, no_metadata, select_metadata
from queryapi.rounds import SharedRounds
from queryapi.runner import QueryRunner
from queryapi.settings import QueryApiSettings
from runtime.clock import Clock
from tsdb import Store
from tsdb.labels import METRIC_NAME, Labels, Matcher, MatchType

PREFIX = "/api/v1"
READ = "get"
"""The verb every route of this API needs: all of them only read."""

# What one round of queries keeps of shared subexpression values; beyond it each query
# evaluates its own (a first load of dashboards over an hour of steps would keep GiBs).
SHARED_BYTES = 256 << 20
_JSON = "application/json"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_RANGE_TYPES = (promql_parser.MatrixSelector, promql_parser.SubqueryExpr)

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _version() -> str:
    try:
        return importlib.metadata.version("foresight")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


async def _form(request: web.Request) -> MultiDictProxy[str]:
    """Parameters as Go's ``Request.Form``: a POST form body's values first, then the URL's."""
    values: MultiDict[str] = MultiDict()
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        for key, value in (await request.post()).items():
            if isinstance(value, str):
                values.add(key, value)
    values.extend(request.query)
    return MultiDictProxy(values)


def _respond(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=_JSON)


def _error(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status)


def _parsed(text: str) -> Any:
    try:
        return parse(text)
    except ParseError as e:
        raise invalid_parameter("query", str(e)) from None


def _range_type(expr: Any) -> str | None:
    """The type Prometheus refuses for a range query, if ``expr`` has one."""
    while isinstance(expr, promql_parser.ParenExpr):
        expr = expr.expr
    if isinstance(expr, _RANGE_TYPES):
        return "range vector"
    if isinstance(expr, promql_parser.StringLiteral):
        return "string"
    return None


class QueryApi:
    """The API's handlers over one engine and store; :meth:`routes` to mount them,
    :meth:`close` on shutdown.

    ``config`` returns the YAML that ``/status/config`` shows (secrets already masked),
    ``metadata`` the metric metadata of ``/metadata``.
    """

    def __init__(
        self,
        engine: Engine,
        store: Store,
        settings: QueryApiSettings,
        clock: Clock,
        config: Callable[[], str] = str,
        metadata: MetadataSource = no_metadata,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.runner = QueryRunner(engine, settings)
        self.cache = RangeCache(
            settings.results_cache_mib << 20,
            round(settings.results_cache_freshness_seconds * 1000),
            lambda: store.generation,
            round(settings.shared_seconds * 1000),
        )
        store.append_observers.append(self.cache.written)
        # Both counts only grow: their sum moves when either does. A round begun before
        # samples were written into the past holds values read without them.
        self.rounds = SharedRounds(
            engine,
            settings.shared_seconds,
            lambda: store.generation + self.cache.writes,
            SHARED_BYTES,
        )
        self._config = config
        self._metadata = metadata
        self._started = clock.now()

    # -- mounting -----------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """Every route of the API, under ``/api/v1``."""
        return [
            web.route(method, PREFIX + path, self._handle(handler))
            for method, path, handler in self._table()
        ]

    @property
    def verbs(self) -> dict[tuple[str, str], str]:
        """The verb each route (method, path) needs: ``get`` for all."""
        return {(method, PREFIX + path): READ for method, path, _ in self._table()}

    def close(self) -> None:
        """Stop the query threads and following the store's appends."""
        self.runner.close()
        if self.cache.written in self.store.append_observers:
            self.store.append_observers.remove(self.cache.written)

    def _table(self) -> list[tuple[str, str, Handler]]:
        both = ("GET", "POST")
        return [
            *((m, "/query", self.query) for m in both),
            *((m, "/query_range", self.query_range) for m in both),
            *((m, "/query_exemplars", self.query_exemplars) for m in both),
            *((m, "/format_query", self.format_query) for m in both),
            *((m, "/series", self.series) for m in both),
            *((m, "/labels", self.labels) for m in both),
            ("GET", "/label/{name}/values", self.label_values),
            ("GET", "/metadata", self.metadata),
            ("GET", "/status/buildinfo", self.buildinfo),
            ("GET", "/status/runtimeinfo", self.runtimeinfo),
            ("GET", "/status/config", self.status_config),
        ]

    @staticmethod
    def _handle(handler: Handler) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            try:
                return await handler(request)
            except ApiError as e:
                return _error(e)

        return handle

    # -- queries ------------------------------------------------------------------------

    async def query(self, request: web.Request) -> web.Response:
        """``/api/v1/query``: ``query``, ``time`` (default now), ``timeout``, ``limit``."""
        form = await _form(request)
        limit = params.limit_param(form.get("limit"))
        at = params.time_param(form.get("time"), "time", round(self.clock.now() * 1000))
        seconds = self._budget(form)
        text = form.get("query", "")
        _parsed(text)
        runner = self.runner

        shared = self.rounds.for_time(at, self.clock.now())

        def work(left: float) -> bytes:
            result = runner.engine_for(left).instant(text, at, shared)
            return self._answer(result, limit)

        return _respond(await runner.run(work, seconds))

    async def query_range(self, request: web.Request) -> web.Response:
        """``/api/v1/query_range``: ``query``, ``start``, ``end``, ``step``, ``timeout``,
        ``limit``."""
        form = await _form(request)
        limit = params.limit_param(form.get("limit"))
        start = params.required_time(form.get("start"), "start")
        end = params.required_time(form.get("end"), "end")
        if end < start:
            raise invalid_parameter("end", "end timestamp must not be before start time")
        step = params.duration_param(form.get("step"), "step")
        if step <= 0:
            raise invalid_parameter(
                "step",
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer",
            )
        runner = self.runner
        max_points = runner.engine.settings.max_points
        if (end - start) // step > max_points:
            raise ApiError(
                "bad_data",
                f"exceeded maximum resolution of {max_points:,} points per timeseries. "
                "Try decreasing the query resolution (?step=XX)",
            )
        seconds = self._budget(form)
        text = form.get("query", "")
        kind = _range_type(_parsed(text))
        if kind is not None:
            raise ApiError(
                "bad_data",
                f'invalid expression type "{kind}" for range query, must be Scalar or '
                "instant Vector",
            )

        def work(left: float) -> bytes:
            engine = runner.engine_for(left)
            # The API's own check above is Prometheus'; the engine's counts one more step.
            engine = engine.with_settings(
                engine.settings.model_copy(update={"max_points": max_points + 1})
            )
            now_s = self.clock.now()

            def share(first: int, last: int, step: int) -> SharedResults | None:
                return self.rounds.for_range(first, last, step, now_s)

            matrix, notes = self.cache.evaluate(
                engine, text, start, end, step, round(now_s * 1000), share
            )
            return _matrix_answer(matrix, notes, limit)

        return _respond(await runner.run(work, seconds))

    def _budget(self, form: Mapping[str, str]) -> float:
        timeout = form.get("timeout")
        requested = params.duration_param(timeout, "timeout") if timeout else None
        return self.runner.budget(requested)

    @staticmethod
    def _answer(result: Any, limit: int) -> bytes:
        data, truncated = query_data(result, limit)
        warnings = list(result.annotations.warnings)
        if truncated:
            warnings.append("results truncated due to limit")
        return success(data, warnings, result.annotations.infos)

    async def query_exemplars(self, request: web.Request) -> web.Response:
        """``/api/v1/query_exemplars``: the store keeps no exemplars, so always ``[]``."""
        form = await _form(request)
        start = params.time_param(form.get("start"), "start", params.MIN_TIME_MS)
        end = params.time_param(form.get("end"), "end", params.MAX_TIME_MS)
        if end < start:
            raise ApiError("bad_data", "end timestamp must not be before start timestamp")
        try:
            parse(form.get("query", ""))
        except ParseError as e:
            raise ApiError("bad_data", str(e)) from None
        return _respond(success_json([]))

    async def format_query(self, request: web.Request) -> web.Response:
        """``/api/v1/format_query``: the expression pretty-printed."""
        form = await _form(request)
        expr = _parsed(form.get("query", ""))
        return _respond(success_json(expr.prettify()))

    # -- the index ----------------------------------------------------------------------

    def _series(self, sets: Sequence[Sequence[Matcher]], start: int, end: int) -> list[Labels]:
        """Label sets of the series matching any of ``sets`` with a sample in
        ``[start, end]`` (any series at all when the range is Prometheus' default)."""
        found: set[Labels] = set()
        for matchers in sets:
            if _whole(start, end):
                found.update(self.store.series(matchers))
            else:
                strings = strings_for(self.store)
                selected = select(self.store, matchers, start, end, strings, newest=True)
                found.update(selected.table.tuples())
        return sorted(found)

    async def _read(self, work: Callable[[], T]) -> T:
        """Index reads run on the query threads too: on a large store they take long."""
        return await self.runner.run(lambda _left: work(), self.runner.budget(None))

    async def series(self, request: web.Request) -> web.Response:
        """``/api/v1/series``: ``match[]`` (required), ``start``, ``end``, ``limit``."""
        form = await _form(request)
        texts = form.getall("match[]", [])
        if not texts:
            raise ApiError("bad_data", "no match[] parameter provided")
        limit, start, end = _index_window(form)
        sets = params.matcher_sets(texts, "match[]")

        def work() -> bytes:
            found = self._series(sets, start, end)
            return _limited([dict(lb) for lb in found], limit)

        return _respond(await self._read(work))

    async def labels(self, request: web.Request) -> web.Response:
        """``/api/v1/labels``: ``match[]``, ``start``, ``end``, ``limit``."""
        form = await _form(request)
        limit, start, end = _index_window(form)
        sets = params.matcher_sets(form.getall("match[]", []))

        def work() -> bytes:
            if not sets and _whole(start, end):
                return _limited(sorted(self.store.label_names()), limit)
            found = self._series(sets or [[_has(METRIC_NAME)]], start, end)
            return _limited(sorted({name for lb in found for name, _ in lb}), limit)

        return _respond(await self._read(work))

    async def label_values(self, request: web.Request) -> web.Response:
        """``/api/v1/label/<name>/values``: ``match[]``, ``start``, ``end``, ``limit``."""
        name = params.label_name(request.match_info["name"])
        form = await _form(request)
        limit, start, end = _index_window(form)
        sets = params.matcher_sets(form.getall("match[]", []))

        def work() -> bytes:
            if not sets and _whole(start, end):
                return _limited(sorted(self.store.label_values(name)), limit)
            found = self._series(sets or [[_has(name)]], start, end)
            return _limited(sorted({v for lb in found for n, v in lb if n == name}), limit)

        return _respond(await self._read(work))

    async def metadata(self, request: web.Request) -> web.Response:
        """``/api/v1/metadata``: ``metric``, ``limit``, ``limit_per_metric``."""
        form = await _form(request)
        limit = _number(form.get("limit"), "limit")
        per_metric = _number(form.get("limit_per_metric"), "limit_per_metric")
        metric = form.get("metric", "")
        source = self._metadata

        def work() -> bytes:
            return success_json(select_metadata(source(), metric, limit, per_metric))

        return _respond(await self._read(work))

    # -- status -------------------------------------------------------------------------

    async def buildinfo(self, request: web.Request) -> web.Response:
        """``/api/v1/status/buildinfo``: foresight's version where Prometheus gives its own."""
        info = {
            "version": _version(),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": f"python{platform.python_version()}",
        }
        return _respond(success_json(info))

    async def runtimeinfo(self, request: web.Request) -> web.Response:
        """``/api/v1/status/runtimeinfo``: Prometheus' fields, filled with this process'."""
        stats = await self._read(self.store.stats)
        retention = self.store.settings.five_minute_retention_days
        info = {
            "startTime": _rfc3339(self._started),
            "CWD": os.getcwd(),
            "reloadConfigSuccess": True,
            "lastConfigTime": _rfc3339(self._started),
            "corruptionCount": stats.recovered_damage,
            "goroutineCount": threading.active_count(),
            "GOMAXPROCS": os.cpu_count() or 1,
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": f"{retention:g}d",
        }
        return _respond(success_json(info))

    async def status_config(self, request: web.Request) -> web.Response:
        """``/api/v1/status/config``: the effective settings as YAML."""
        return _respond(success_json({"yaml": self._config()}))


def _matrix_answer(matrix: EncodedMatrix, notes: Annotations, limit: int) -> bytes:
    warnings = list(notes.warnings)
    data, truncated = matrix.data(limit)
    if truncated:
        warnings.append("results truncated due to limit")
    return success(data, warnings, notes.infos)


def _index_window(form: Mapping[str, str]) -> tuple[int, int, int]:
    """``limit``, ``start`` and ``end`` of the index endpoints; the range defaults to all time."""
    limit = params.limit_param(form.get("limit"))
    start = params.time_param(form.get("start"), "start", params.MIN_TIME_MS)
    end = params.time_param(form.get("end"), "end", params.MAX_TIME_MS)
    return limit, start, end


def _whole(start: int, end: int) -> bool:
    """Whether ``[start, end]`` is Prometheus' default range, all of time: the index alone
    answers then, without looking for samples."""
    return start <= params.MIN_TIME_MS and end >= params.MAX_TIME_MS


def _has(name: str) -> Matcher:
    """Matches the series that have label ``name``."""
    return Matcher(MatchType.NOT_EQUAL, name, "")


def _limited(items: list[Any], limit: int) -> bytes:
    if limit and len(items) > limit:
        return success_json(items[:limit], ["results truncated due to limit"])
    return success_json(items)


def _number(value: str | None, name: str) -> int:
    """``limit`` and ``limit_per_metric`` of ``/metadata`` (-1 when absent)."""
    if not value:
        return -1
    try:
        return int(value, 10)
    except ValueError:
        raise ApiError("bad_data", f"{name} must be a number") from None
