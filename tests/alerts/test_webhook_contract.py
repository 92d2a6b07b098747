"""What a webhook receiver can rely on: the payload has exactly the fields a real
Alertmanager 0.25 sends, the README's signature check verifies a real delivery, and an
alert's ``generatorURL`` answers 200 on the running alerting service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from alerts.notify.delivery import Delivery
from alerts.notify.model import NotifyAlert
from alerts.notify.outbox import Outbox
from alerts.notify.payload import build_payload
from alerts.notify.signing import SIGNATURE_HEADER
from alerts.notify.targets import Target
from alerts.service import AlertingService
from alerts.settings import DeliverySettings, NotifySettings, RuleSettings
from promql import Engine
from runtime.clock import RealClock, VirtualClock
from tests.support.external import require_binary
from tsdb import Store, StoreSettings

REPO = Path(__file__).resolve().parents[2]


class Recorder:
    """A loopback receiver keeping every request's headers and raw body."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    r = Recorder()
    await r.start()
    yield r
    await r.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait(cond: Callable[[], bool], seconds: float) -> None:
    # A real Alertmanager runs on its own wall clock; nothing here can be injected.
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, f"not within {seconds}s"
        await asyncio.sleep(0.05)


async def test_payload_fields_are_those_of_a_real_alertmanager(
    recorder: Recorder, tmp_path: Path
) -> None:
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    (tmp_path / "am.yml").write_text(
        "route:\n"
        "  receiver: hook\n"
        "  group_by: [alertname]\n"
        "  group_wait: 0s\n"
        "receivers:\n"
        "- name: hook\n"
        f"  webhook_configs: [{{url: '{recorder.url}'}}]\n"
    )
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={tmp_path / 'am.yml'}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            ready = False
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    ready = (await http.get("/-/ready")).status_code == 200
                if ready:
                    break
                await asyncio.sleep(0.05)
            assert ready, "alertmanager did not become ready"
            posted = [
                {
                    "labels": {"alertname": "DiskFull", "instance": "n1"},
                    "annotations": {"summary": "full"},
                    "generatorURL": "http://foresight.example/api/v1/rules",
                }
            ]
            assert (await http.post("/api/v2/alerts", json=posted)).status_code == 200
            await _wait(lambda: bool(recorder.requests), 30)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    real = json.loads(recorder.requests[0][1])
    now_ms = round(time.time() * 1000)
    alert = NotifyAlert(
        (("alertname", "DiskFull"), ("instance", "n1")),
        (("summary", "full"),),
        now_ms - 1000,
        0,
        "http://foresight.example/api/v1/rules",
    )
    ours = build_payload("hook", [alert], (("alertname", "DiskFull"),), "{}:{}", "", now_ms)
    assert sorted(ours) == sorted(real)
    assert sorted(ours["alerts"][0]) == sorted(real["alerts"][0])
    assert ours["alerts"][0]["fingerprint"] == real["alerts"][0]["fingerprint"]


def _readme_verify() -> Callable[..., bool]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- signature-check -->\n```python\n(.*?)```", readme, re.DOTALL)
    assert found, "README: the signature check snippet is missing"
    snippet = found.group(1)
    assert len([line for line in snippet.splitlines() if line]) == 5  # short enough to copy
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # our own README's snippet, run as a receiver would
    verify: Callable[..., bool] = namespace["verify"]
    return verify


async def test_readme_signature_check_verifies_a_real_delivery(
    recorder: Recorder, tmp_path: Path
) -> None:
    secret_file = tmp_path / "hmac"
    secret_file.write_text("c0ffee-s3cret\n")  # as `kubectl create secret` or echo leave it
    target = Target("team", "webhook", 0, recorder.url, secret_file=secret_file)
    outbox = Outbox(tmp_path / "outbox")
    delivery = Delivery({target.id: target}, outbox, RealClock(), DeliverySettings())
    body = json.dumps({"version": "4", "status": "firing", "text": "é ✓"}).encode()
    outbox.enqueue(target.id, body, round(time.time() * 1000), "g")
    try:
        assert await delivery.step() is None
    finally:
        await delivery.aclose()
        outbox.close()
    ((headers, received),) = recorder.requests
    assert received == body
    header = headers[SIGNATURE_HEADER]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    verify = _readme_verify()
    # The key is the file's content without its trailing newline.
    assert verify(b"c0ffee-s3cret", header, received)
    assert not verify(b"c0ffee-s3cret\n", header, received)
    assert not verify(b"c0ffee-s3cret", header, received + b" ")
    stale = re.sub(r"t=(\d+)", lambda m: f"t={int(m.group(1)) - 600}", header)
    assert not verify(b"c0ffee-s3cret", stale, received)


RULES = """groups:
- name: g
  interval: 1m
  rules:
  - alert: JobDown
    expr: up == 0
    labels:
      severity: page
"""


async def test_generator_url_answers_200_on_the_running_service(
    recorder: Recorder, tmp_path: Path
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yml").write_text(RULES)
    clock = VirtualClock(1_767_225_600.0)
    store = Store(StoreSettings(), clock, persistent=False)
    notify = NotifySettings.model_validate(
        {
            "receivers": [{"name": "hook", "webhook_configs": [{"url": recorder.url}]}],
            "route": {"receiver": "hook", "group_wait": "10s"},
        }
    )
    rules = RuleSettings(
        files=[tmp_path / "rules"], state_dir=tmp_path / "state", builtin=False, external_url=base
    )
    svc = AlertingService(rules, notify, store, clock, Engine(store))
    app = web.Application()
    app.add_routes(svc.http_routes())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    now = round(clock.now() * 1000)
    for k in range(10):
        store.append({"__name__": "up", "job": "api", "instance": "a"}, now + k * 30_000, 0)
    svc.set_leader(True)
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    try:
        for _ in range(400):
            if recorder.requests:
                break
            await clock.sleep(1)
        ((_, body),) = recorder.requests
        (alert,) = json.loads(body)["alerts"]
        url = alert["generatorURL"]
        assert url.startswith(f"{base}/")
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
        assert response.status_code == 200
        (group,) = response.json()["data"]["groups"]
        (rule,) = group["rules"]
        assert rule["name"] == "JobDown" and rule["query"] == "up == 0"
        assert rule["state"] == "firing" and len(rule["alerts"]) == 1
    finally:
        stop.set()
        await task
        await svc.aclose()
        store.close()
        await runner.cleanup()
        await clock.aclose()
