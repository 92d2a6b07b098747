"""The alert engine's HTTP API.

``/api/v1/alerts`` and ``/api/v1/rules`` answer in Prometheus' JSON shape, so tools that read
Prometheus' alert API read foresight's; a rule file that failed to load is listed, one
``file:line:col: message`` per problem, in the ``warnings`` of ``/api/v1/rules`` (the field
Prometheus' API envelope has for such notes; Prometheus itself refuses a configuration with a
bad rule file, foresight runs the other files). ``/api/v2/silences`` and ``/api/v2/silence/{id}``
answer like Alertmanager's. The JSON is built by pure functions of the rule groups and the
silences; the handlers only parse requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from alerts.notify.matchers import MatcherError, parse_matchers
from alerts.notify.model import ZERO_TIME, rfc3339
from alerts.notify.silences import SilenceError, SilenceNotFound, Silences, silence_from_api
from alerts.rules.errors import RuleFileError
from alerts.rules.gofmt import format_e
from alerts.rules.group import GroupState
from alerts.rules.model import RuleSpec
from alerts.rules.state import Alert, AlertState
from runtime.gcpause import call_paused


def _time(ms: int) -> str:
    return rfc3339(ms) if ms else ZERO_TIME


def alert_json(a: Alert) -> dict[str, Any]:
    """One alert as Prometheus' API prints it."""
    out: dict[str, Any] = {
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "state": a.state.value,
        "activeAt": _time(a.active_at),
        "value": format_e(a.value),
    }
    if a.keep_firing_since:
        out["keepFiringSince"] = _time(a.keep_firing_since)
    return out


def _active(alerts: dict[Any, Alert]) -> list[Alert]:
    return [a for a in alerts.values() if a.state is not AlertState.INACTIVE]


def alerts_json(groups: Sequence[GroupState]) -> dict[str, Any]:
    """``/api/v1/alerts``: every pending and firing alert."""
    alerts = [
        alert_json(a) for g in groups for rule_alerts in g.alerts for a in _active(rule_alerts)
    ]
    return {"status": "success", "data": {"alerts": alerts}}


def _rule_state(active: list[Alert]) -> str:
    states = {a.state for a in active}
    if AlertState.FIRING in states:
        return "firing"
    if AlertState.PENDING in states:
        return "pending"
    return "inactive"


def rule_json(g: GroupState, i: int, rule: RuleSpec, with_alerts: bool = True) -> dict[str, Any]:
    """One rule as Prometheus' ``/api/v1/rules`` prints it."""
    status = g.status[i]
    common: dict[str, Any] = {
        "name": rule.name,
        "query": rule.expr,
        "labels": dict(rule.labels),
        "health": status.health,
        "evaluationTime": status.evaluation_seconds,
        "lastEvaluation": _time(status.last_evaluation_ms),
    }
    if status.last_error:
        common["lastError"] = status.last_error
    if rule.kind == "record":
        return {**common, "type": "recording"}
    active = _active(g.alerts[i])
    out = {
        **common,
        "state": _rule_state(active),
        "duration": rule.for_ms / 1000,
        "keepFiringFor": rule.keep_firing_for_ms / 1000,
        "annotations": dict(rule.annotations),
        "type": "alerting",
    }
    if with_alerts:
        out["alerts"] = [alert_json(a) for a in active]
    return out


def rules_json(
    groups: Sequence[GroupState],
    kind: str = "",
    names: Sequence[str] = (),
    group_names: Sequence[str] = (),
    files: Sequence[str] = (),
    exclude_alerts: bool = False,
    file_errors: Sequence[RuleFileError] = (),
) -> dict[str, Any]:
    """``/api/v1/rules`` with its filters (``type``, ``rule_name[]``, ``rule_group[]``,
    ``file[]``, ``exclude_alerts``); ``file_errors`` become its ``warnings``."""
    out = []
    for g in groups:
        if (group_names and g.spec.name not in group_names) or (files and g.spec.file not in files):
            continue
        rules = [
            rule_json(g, i, r, not exclude_alerts)
            for i, r in enumerate(g.spec.rules)
            if (not kind or r.kind == kind) and (not names or r.name in names)
        ]
        if not rules and (kind or names):
            continue
        out.append(
            {
                "name": g.spec.name,
                "file": g.spec.file,
                "rules": rules,
                "interval": g.interval_ms / 1000,
                "limit": g.spec.limit,
                "evaluationTime": g.last_duration_s,
                "lastEvaluation": _time(g.last_evaluation_ms),
            }
        )
    body: dict[str, Any] = {"status": "success", "data": {"groups": out}}
    if file_errors:
        body["warnings"] = [str(e) for e in file_errors]
    return body


def _error(status: int, error_type: str, message: str) -> web.Response:
    body = {"status": "error", "errorType": error_type, "error": message}
    return web.json_response(body, status=status)


async def _json_off_loop(build: Callable[..., Any], *args: Any) -> web.Response:
    """``build(*args)`` as a JSON answer, made in a worker thread: tens of thousands of
    alerts, each annotation printed when read, take the event loop's thread a good part of
    a second. The groups' states are whole rounds: only alerts' values move in place while
    a round runs (an alert's printed annotations follow its value, see ``Alert``)."""
    text = await asyncio.to_thread(call_paused, lambda: json.dumps(build(*args)))
    return web.Response(text=text, content_type="application/json")


def routes(
    groups: Callable[[], Sequence[GroupState]],
    silences: Silences,
    now_ms: Callable[[], int],
    file_errors: Callable[[], Sequence[RuleFileError]] = list,
) -> list[web.RouteDef]:
    """The API's routes over live rule groups, the rule files' errors and silences."""

    async def get_alerts(request: web.Request) -> web.Response:
        return await _json_off_loop(alerts_json, groups())

    async def get_rules(request: web.Request) -> web.Response:
        q = request.query
        kind = q.get("type", "")
        if kind not in ("", "alert", "record"):
            return _error(400, "bad_data", f'unsupported type "{kind}" (valid: alert, record)')
        exclude = q.get("exclude_alerts", "false").lower()
        if exclude not in ("true", "false"):
            return _error(400, "bad_data", f"exclude_alerts: not a boolean: {exclude}")
        return await _json_off_loop(
            rules_json,
            groups(),
            kind,
            q.getall("rule_name[]", []),
            q.getall("rule_group[]", []),
            q.getall("file[]", []),
            exclude == "true",
            file_errors(),
        )

    async def list_silences(request: web.Request) -> web.Response:
        try:
            filters = [m for f in request.query.getall("filter", []) for m in parse_matchers(f)]
        except MatcherError as e:
            return web.json_response(f"bad filter: {e}", status=400)
        now = now_ms()
        return web.json_response([s.to_api(now) for s in silences.query(now, filters)])

    async def post_silence(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            posted = silence_from_api(body)
            silence_id = silences.set(posted, now_ms())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            return web.json_response(f"invalid JSON: {e}", status=400)
        except SilenceNotFound as e:
            return web.json_response(str(e), status=404)
        except SilenceError as e:
            return web.json_response(f"Failed to create silence: {e}", status=400)
        return web.json_response({"silenceID": silence_id})

    async def get_silence(request: web.Request) -> web.Response:
        try:
            s = silences.get(request.match_info["id"])
        except SilenceNotFound as e:
            return web.json_response(str(e), status=404)
        return web.json_response(s.to_api(now_ms()))

    async def delete_silence(request: web.Request) -> web.Response:
        try:
            silences.expire(request.match_info["id"], now_ms())
        except SilenceNotFound as e:
            return web.json_response(str(e), status=404)
        except SilenceError as e:
            return web.json_response(str(e), status=400)
        return web.Response(status=200)

    return [
        web.get("/api/v1/alerts", get_alerts),
        web.get("/api/v1/rules", get_rules),
        web.get("/api/v2/silences", list_silences),
        web.post("/api/v2/silences", post_silence),
        web.get("/api/v2/silence/{id}", get_silence),
        web.delete("/api/v2/silence/{id}", delete_silence),
    ]
