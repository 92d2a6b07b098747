"""A bad rule file beside good ones: the good files and the built-ins load and run, the bad
file is reported (log once per change, ``/api/v1/rules`` warnings, the reload metric, and a
503 ``/readyz`` naming it), and a file that turns bad keeps its last good version."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from alerts.builtin import SOURCE
from alerts.rules.group import EvalContext
from alerts.rules.manager import RuleManager
from alerts.service import AlertingService
from alerts.settings import NotifySettings, RuleSettings
from autoscaler.service import Service
from promql import Engine
from runtime.clock import VirtualClock
from tests.controller.conftest import open_rig
from tsdb import Store, StoreSettings

GOOD = """groups:
- name: good
  rules:
  - alert: Always
    expr: vector(1)
"""
# The error sits on line 5, column 11: `vector(1` lacks its parenthesis.
BAD = """groups:
- name: bad
  rules:
  - alert: Broken
    expr: vector(1
"""
NOTIFY = NotifySettings.model_validate(
    {"receivers": [{"name": "none"}], "route": {"receiver": "none"}}
)


def _rules(tmp: Path, builtin: bool = True) -> RuleSettings:
    return RuleSettings(files=[tmp / "rules"], state_dir=tmp / "state", builtin=builtin)


def _write(tmp: Path, **files: str) -> None:
    (tmp / "rules").mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp / "rules" / f"{name}.yaml").write_text(text)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[AlertingService, httpx.AsyncClient]]:
    _write(tmp_path, a_bad=BAD, b_good=GOOD)
    clock = VirtualClock(1_767_225_600.0)
    store = Store(StoreSettings(), clock, persistent=False)
    svc = AlertingService(_rules(tmp_path), NOTIFY, store, clock, Engine(store))
    app = web.Application()
    app.add_routes(svc.http_routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        yield svc, http
    await svc.aclose()
    await runner.cleanup()
    store.close()
    await clock.aclose()


async def test_bad_file_at_start_keeps_builtins_and_good_files(
    served: tuple[AlertingService, httpx.AsyncClient], tmp_path: Path
) -> None:
    svc, http = served
    svc._do_reload(force=True)
    body = (await http.get("/api/v1/rules")).json()
    assert body["status"] == "success"
    files = {g["file"] for g in body["data"]["groups"]}
    assert SOURCE in files
    assert str(tmp_path / "rules" / "b_good.yaml") in files
    assert str(tmp_path / "rules" / "a_bad.yaml") not in files
    (warning,) = body["warnings"]
    assert warning.startswith(f"{tmp_path}/rules/a_bad.yaml:5:11: ")
    assert "could not parse expression" in warning
    registry = CollectorRegistry()
    registry.register(svc.prometheus_collector())
    assert registry.get_sample_value("foresight_rule_config_last_reload_successful") == 0
    degraded = svc.degraded()
    assert degraded is not None
    assert degraded.startswith(f"rules: 1 file failed to load: {tmp_path}/rules/a_bad.yaml:5:11: ")
    # The good group is evaluated.
    svc.manager.evaluate_due(round(svc.clock.now() * 1000) + 3_600_000)
    good = (await http.get("/api/v1/rules", params={"rule_group[]": "good"})).json()
    (rule,) = good["data"]["groups"][0]["rules"]
    assert rule["state"] == "firing" and rule["health"] == "ok"
    # Fixed: no warnings, the metric is back to 1, nothing degraded.
    _write(tmp_path, a_bad=BAD.replace("vector(1", "vector(1)"))
    svc._do_reload(force=False)
    body = (await http.get("/api/v1/rules")).json()
    assert "warnings" not in body
    assert "bad" in {g["name"] for g in body["data"]["groups"]}
    assert registry.get_sample_value("foresight_rule_config_last_reload_successful") == 1
    assert svc.degraded() is None


def _manager(tmp: Path) -> tuple[RuleManager, Store]:
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    return RuleManager(_rules(tmp, builtin=False), EvalContext(Engine(store), store)), store


def test_a_file_turned_bad_keeps_its_last_good_version(tmp_path: Path) -> None:
    _write(tmp_path, a=GOOD.replace("good", "a"), b=GOOD)
    m, store = _manager(tmp_path)
    assert m.reload()
    _write(tmp_path, a=BAD.replace("bad", "a"), b=GOOD.replace("Always", "Renamed"))
    assert not m.reload()
    assert [(g.spec.name, [r.name for r in g.spec.rules]) for g in m.groups] == [
        ("a", ["Always"]),  # the last good version of a.yaml
        ("good", ["Renamed"]),  # b.yaml's new version
    ]
    (path,) = m.file_errors
    assert path == str(tmp_path / "rules" / "a.yaml")
    assert "a.yaml:5:11" in m.last_error
    store.close()


def test_an_error_is_logged_once_per_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write(tmp_path, a=BAD, b=GOOD)
    m, store = _manager(tmp_path)
    with caplog.at_level(logging.INFO, logger="alerts.rules.manager"):
        for _ in range(3):
            assert not m.reload()
        assert not m.reload(force=True)  # SIGHUP, nothing changed
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "a.yaml:5:11" in errors[0].getMessage()
        _write(tmp_path, a=BAD.replace("vector(1", "vector(1) +"))
        assert not m.reload()
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 2
        _write(tmp_path, a=GOOD.replace("good", "a"))
        assert m.reload()
        assert any("loads again" in r.getMessage() for r in caplog.records)
    store.close()


async def test_readyz_reports_failed_rule_files(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.service.close()
        _write(tmp_path, a_bad=BAD, b_good=GOOD)
        base = rig.service.settings
        settings = base.model_copy(
            update={"rules": base.rules.model_copy(update={"files": [tmp_path / "rules"]})}
        )
        service = rig.service = Service(settings, rig.clock, api=rig.api)
        await service.start()
        await service.wait_synced()
        service.alerts._do_reload(force=True)
        port = await service.serve_http()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.text.startswith(
                f"rules: 1 file failed to load: {tmp_path}/rules/a_bad.yaml:5:11: "
            )
            assert (await http.get("/healthz")).status_code == 200
            _write(tmp_path, a_bad=GOOD.replace("good", "fixed"))
            service.alerts._do_reload(force=True)
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.text) == (200, "ok\n")
