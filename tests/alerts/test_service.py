"""The alerting service end to end on a virtual clock: rules → groups → webhook, leadership,
reloads, restarts, metrics and the HTTP API (Prometheus' and Alertmanager's shapes)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

import alerts.api as alerts_api
from alerts.notify.silences import Silences
from alerts.service import AlertingService
from alerts.settings import NotifySettings, RuleSettings
from promql import Engine
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

T0 = 1_767_225_600.0
RULES = """groups:
- name: g
  interval: 1m
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: JobDown
    expr: job:up:sum == 0
    for: 2m
    labels:
      severity: page
    annotations:
      summary: '{{ $labels.job }} is down ({{ $value }})'
"""


class Hook:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        return web.Response()


class Rig:
    def __init__(self, tmp: Path, hook_url: str, clock: VirtualClock) -> None:
        self.tmp = tmp
        self.clock = clock
        self.notify = NotifySettings.model_validate(
            {
                "receivers": [{"name": "hook", "webhook_configs": [{"url": hook_url}]}],
                "route": {"receiver": "hook", "group_wait": "10s", "group_interval": "1m"},
            }
        )
        self.rules = RuleSettings(
            files=[tmp / "rules"],
            state_dir=tmp / "state",
            builtin=False,
            external_url="http://foresight.example",
            external_labels={"cluster": "c1"},
        )
        self.store = Store(StoreSettings(), clock, persistent=False)
        self.svc = self.start()
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> AlertingService:
        return AlertingService(self.rules, self.notify, self.store, self.clock, Engine(self.store))

    def run(self) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.svc.run(self.stop))

    async def halt(self) -> None:
        self.stop.set()
        assert self.task is not None
        await self.task
        await self.svc.aclose()

    def up(self, value: float) -> None:
        """Feed `up` for the next few minutes of virtual time."""
        now = round(self.clock.now() * 1000)
        for k in range(0, 10):
            self.store.append(
                {"__name__": "up", "job": "api", "instance": "a"}, now + k * 30_000, value
            )

    async def until(self, cond: Callable[[], bool], seconds: float) -> None:
        for _ in range(int(seconds)):
            if cond():
                return
            await self.clock.sleep(1)
        assert cond(), f"not within {seconds}s of virtual time"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Rig, Hook]]:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yml").write_text(RULES)
    hook = Hook()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    clock = VirtualClock(T0)
    r = Rig(tmp_path, f"http://127.0.0.1:{port}/hook", clock)
    yield r, hook
    if r.task is not None and not r.task.done():
        await r.halt()
    r.store.close()
    await runner.cleanup()
    await clock.aclose()


async def test_fires_notifies_resolves_and_exports(rig: tuple[Rig, Hook]) -> None:
    r, hook = rig
    r.svc.set_leader(True)
    r.up(0)
    r.run()
    await r.until(lambda: bool(hook.bodies), 400)
    body = hook.bodies[0]
    assert body["status"] == "firing"
    assert body["groupKey"] == '{}:{alertname="JobDown"}'
    (a,) = body["alerts"]
    assert a["labels"] == {
        "alertname": "JobDown",
        "cluster": "c1",
        "job": "api",
        "severity": "page",
    }
    assert a["annotations"] == {"summary": "api is down (0)"}
    assert a["generatorURL"] == (
        "http://foresight.example/api/v1/rules?type=alert&rule_name%5B%5D=JobDown"
    )
    registry = CollectorRegistry()
    registry.register(r.svc.prometheus_collector())
    labels = {"alertname": "JobDown", "severity": "page", "state": "firing"}
    assert registry.get_sample_value("foresight_alerts", labels) == 1
    assert (
        registry.get_sample_value(
            "foresight_notifications_total", {"receiver": "hook", "outcome": "sent"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "foresight_rule_group_last_evaluation_seconds", {"rule_group": f"{r.tmp}/rules/a.yml;g"}
        )
        > T0
    )
    r.up(1)
    await r.until(lambda: len(hook.bodies) == 2, 400)
    assert hook.bodies[1]["status"] == "resolved"
    await r.halt()


async def test_standby_evaluates_but_sends_nothing_until_leader(rig: tuple[Rig, Hook]) -> None:
    r, hook = rig
    r.up(0)
    r.run()
    await r.until(
        lambda: any(
            a.state.value == "firing"
            for g in r.svc.manager.groups
            for x in g.alerts
            for a in x.values()
        ),
        400,
    )
    await r.clock.sleep(120)
    assert hook.bodies == []
    r.svc.set_leader(True)
    await r.until(lambda: bool(hook.bodies), 120)
    r.svc.set_leader(False)
    assert r.svc._sender is not None and r.svc._sender.cancelling()
    await r.halt()


async def test_restart_neither_repeats_nor_restarts_for(rig: tuple[Rig, Hook]) -> None:
    r, hook = rig
    r.svc.set_leader(True)
    r.up(0)
    r.run()
    await r.until(lambda: bool(hook.bodies), 400)

    def active_at() -> list[int]:
        return [a.active_at for g in r.svc.manager.groups for x in g.alerts for a in x.values()]

    before = active_at()
    await r.halt()
    r.svc = r.start()  # a new process on the same state
    r.svc.set_leader(True)
    r.up(0)
    r.run()
    await r.clock.sleep(240)
    assert active_at() == before
    assert [b["status"] for b in hook.bodies] == ["firing"]
    await r.halt()


async def test_reload_on_demand_keeps_last_good_rules(rig: tuple[Rig, Hook]) -> None:
    r, _ = rig
    r.run()
    await r.clock.sleep(1)
    (r.tmp / "rules" / "a.yml").write_text(RULES.replace("== 0", "== ("))
    r.svc.reload()
    await r.clock.sleep(1)
    registry = CollectorRegistry()
    registry.register(r.svc.prometheus_collector())
    assert registry.get_sample_value("foresight_rule_config_last_reload_successful") == 0
    assert [rule.name for rule in r.svc.manager.groups[0].spec.rules] == ["job:up:sum", "JobDown"]
    (r.tmp / "rules" / "b.yml").write_text(RULES.replace("name: g", "name: h"))
    (r.tmp / "rules" / "a.yml").write_text(RULES)
    r.svc.reload()
    await r.clock.sleep(1)
    assert [g.spec.name for g in r.svc.manager.groups] == ["g", "h"]
    await r.halt()


async def test_http_api(rig: tuple[Rig, Hook]) -> None:
    r, hook = rig
    r.svc.set_leader(True)
    r.up(0)
    app = web.Application()
    app.add_routes(r.svc.http_routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=base) as http:
        # A silence on the alert before it fires: nothing is sent.
        silence = {
            "matchers": [
                {"name": "alertname", "value": "JobDown", "isRegex": False, "isEqual": True}
            ],
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "2026-01-01T02:00:00Z",
            "createdBy": "alice",
            "comment": "maintenance",
        }
        created = await http.post("/api/v2/silences", json=silence)
        assert created.status_code == 200
        sid = created.json()["silenceID"]
        r.run()
        await r.until(
            lambda: any(
                a.state.value == "firing"
                for g in r.svc.manager.groups
                for x in g.alerts
                for a in x.values()
            ),
            400,
        )
        await r.clock.sleep(60)
        assert hook.bodies == []
        alerts = (await http.get("/api/v1/alerts")).json()
        assert alerts["status"] == "success"
        (a,) = alerts["data"]["alerts"]
        assert a["labels"] == {"alertname": "JobDown", "job": "api", "severity": "page"}
        assert a["state"] == "firing" and a["value"] == "0e+00"
        assert a["activeAt"].startswith("2026-01-01T00:0")
        rules = (await http.get("/api/v1/rules")).json()["data"]["groups"]
        (g,) = rules
        assert g["name"] == "g" and g["interval"] == 60 and g["file"].endswith("a.yml")
        record, alert = g["rules"]
        assert record["type"] == "recording" and record["health"] == "ok"
        assert (
            alert["type"] == "alerting" and alert["state"] == "firing" and alert["duration"] == 120
        )
        assert len(alert["alerts"]) == 1
        only = (await http.get("/api/v1/rules", params={"type": "record"})).json()
        assert [x["type"] for x in only["data"]["groups"][0]["rules"]] == ["recording"]
        listed = (await http.get("/api/v2/silences")).json()
        assert [(s["id"], s["status"]["state"], s["createdBy"]) for s in listed] == [
            (sid, "active", "alice")
        ]
        assert (await http.get(f"/api/v2/silence/{sid}")).json()["comment"] == "maintenance"
        bad = await http.post("/api/v2/silences", json={**silence, "matchers": []})
        assert bad.status_code == 400 and "at least one matcher" in bad.json()
        assert (await http.delete(f"/api/v2/silence/{sid}")).status_code == 200
        assert (await http.get(f"/api/v2/silence/{sid}")).json()["status"]["state"] == "expired"
        assert (await http.delete("/api/v2/silence/nope")).status_code == 404
        await r.until(lambda: bool(hook.bodies), 120)  # expired: the next flush notifies
    await r.halt()
    await runner.cleanup()


async def test_the_alert_and_rule_lists_are_built_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tens of thousands of alerts, their annotations printed when read: not on the loop.
    built_in: list[int] = []

    def recorded(real: Callable[..., Any]) -> Callable[..., Any]:
        def build(*args: Any) -> Any:
            built_in.append(threading.get_ident())
            return real(*args)

        return build

    monkeypatch.setattr(alerts_api, "alerts_json", recorded(alerts_api.alerts_json))
    monkeypatch.setattr(alerts_api, "rules_json", recorded(alerts_api.rules_json))
    app = web.Application()
    app.add_routes(alerts_api.routes(list, Silences(tmp_path, 3_600_000), lambda: 0))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            alerts = (await http.get("/api/v1/alerts")).json()
            rules = (await http.get("/api/v1/rules")).json()
    finally:
        await runner.cleanup()
    assert alerts == {"status": "success", "data": {"alerts": []}}
    assert rules["data"]["groups"] == []
    assert len(built_in) == 2 and threading.get_ident() not in built_in
