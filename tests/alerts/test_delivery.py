"""Delivery against a loopback receiver that is down, fails, throttles, rejects or hangs:
every notification is accounted for, in order per group, and verified by the receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from alerts.metrics import AlertingCollector, Sources
from alerts.notify.delivery import Delivery
from alerts.notify.outbox import Outbox
from alerts.notify.silences import Silences
from alerts.notify.targets import Target
from alerts.settings import DeliverySettings
from runtime.clock import VirtualClock

T0 = 1_767_225_600.0
SECRET = b"topsecret"


class Faulty:
    """Answers each request by a script keyed on the notification's ``n``; records arrivals."""

    def __init__(self, script: dict[int, list[str]]) -> None:
        self.script = script
        self.arrived: list[tuple[str, int]] = []  # (idempotency key, n) of each 200
        self.calls = 0
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.read()
        ts, _, mac = request.headers["X-Foresight-Signature"].partition(",v1=")
        want = hmac.new(SECRET, ts.removeprefix("t=").encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest(want.hexdigest(), mac):
            self.bad_signatures += 1
            return web.Response(status=401)
        n = json.loads(body)["n"]
        plan = self.script.get(n, [])
        action = plan.pop(0) if plan else "ok"
        if action == "hang":
            await asyncio.sleep(3600)
        if action == "429":
            return web.Response(status=429, headers={"Retry-After": "30"})
        if action in ("500", "400"):
            return web.Response(status=int(action), text="no")
        self.arrived.append((request.headers["Idempotency-Key"], n))
        return web.Response(status=200)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def server() -> AsyncIterator[tuple[Faulty, int, web.AppRunner]]:
    rec = Faulty({})
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    yield rec, _free_port(), runner
    await runner.cleanup()


async def _drain(d: Delivery, clock: VirtualClock, rounds: int = 200) -> None:
    for _ in range(rounds):
        wait = await d.step()
        if wait is None:
            return
        clock.advance(max(wait, 0.001))
    raise AssertionError("delivery did not finish")


async def test_every_notification_is_accounted_for(
    server: tuple[Faulty, int, web.AppRunner], tmp_path: Path
) -> None:
    rec, port, runner = server
    rec.script = {1: ["500", "500"], 2: ["429"], 3: ["400"], 4: ["hang"], 5: ["500"] * 3}
    clock = VirtualClock(T0, autoadvance=False)
    outbox = Outbox(tmp_path)
    target = Target(
        "hook",
        "webhook",
        0,
        f"http://127.0.0.1:{port}/hook",
        secret=SecretStr(SECRET.decode()),
        timeout_seconds=0.3,
    )
    settings = DeliverySettings(
        initial_backoff_seconds=1, jitter=0.5, dead_letter_after_seconds=3_600
    )
    ids = {
        outbox.enqueue(target.id, json.dumps({"n": n}).encode(), int(T0 * 1000), f"g{n}").id: n
        for n in range(12)
    }
    async with httpx.AsyncClient() as client:
        d = Delivery({target.id: target}, outbox, clock, settings, client)
        # Down for a while: nothing listens on the port.
        for _ in range(3):
            await d.step()
            clock.advance(5)
        assert rec.calls == 0 and len(outbox.pending) == 12
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await _drain(d, clock)
    assert rec.bad_signatures == 0
    keys = [k for k, _ in rec.arrived]
    assert len(keys) == len(set(keys))  # each delivered once
    assert {ids[k] for k in keys} == set(range(12)) - {3}  # all but the rejected one
    assert all(ids[k] == n for k, n in rec.arrived)  # the key is the notification's own
    assert d.counts[("hook", "sent")] == 11
    assert d.counts[("hook", "rejected")] == 1
    assert d.counts[("hook", "failed")] >= 3 * 12 + 2 + 1 + 1 + 3
    assert outbox.pending == {}
    outbox.close()
    assert Outbox(tmp_path).pending == {}


async def test_a_group_is_delivered_in_order_and_others_do_not_wait(
    server: tuple[Faulty, int, web.AppRunner], tmp_path: Path
) -> None:
    rec, port, runner = server
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rec.script = {0: ["500"]}
    clock = VirtualClock(T0, autoadvance=False)
    outbox = Outbox(tmp_path)
    target = Target(
        "hook", "webhook", 0, f"http://127.0.0.1:{port}/hook", secret=SecretStr(SECRET.decode())
    )
    for n, group in ((0, "g"), (1, "g"), (2, "h")):
        outbox.enqueue(target.id, json.dumps({"n": n}).encode(), int(T0 * 1000), group)
    settings = DeliverySettings(initial_backoff_seconds=1, jitter=0)
    async with httpx.AsyncClient() as client:
        d = Delivery({target.id: target}, outbox, clock, settings, client)
        await _drain(d, clock)
    assert [n for _, n in rec.arrived] == [2, 0, 1]
    outbox.close()


async def test_dead_letters_show_in_metrics_and_survive_restart(tmp_path: Path) -> None:
    clock = VirtualClock(T0, autoadvance=False)
    outbox = Outbox(tmp_path)
    target = Target(
        "hook", "webhook", 0, f"http://127.0.0.1:{_free_port()}/down", timeout_seconds=1
    )
    outbox.enqueue(target.id, b"{}", int(T0 * 1000))
    settings = DeliverySettings(jitter=0, dead_letter_after_seconds=60)
    async with httpx.AsyncClient() as client:
        d = Delivery({target.id: target}, outbox, clock, settings, client)
        await _drain(d, clock)
    registry = CollectorRegistry()
    silences = Silences(tmp_path, 1)
    registry.register(
        AlertingCollector(
            lambda: Sources([], d.counts, outbox, ["hook"], silences, True, int(T0 * 1000))
        )
    )
    assert (
        registry.get_sample_value("foresight_notification_dead_letters", {"receiver": "hook"}) == 1
    )
    assert (
        registry.get_sample_value(
            "foresight_notifications_total", {"receiver": "hook", "outcome": "dead_lettered"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("foresight_notification_outbox_size", {"receiver": "hook"}) == 0
    )
    outbox.close()
    again = Outbox(tmp_path)
    assert again.pending == {} and len(again.dead) == 1
    assert "ConnectError" in next(iter(again.dead.values())).last_error
    again.close()
