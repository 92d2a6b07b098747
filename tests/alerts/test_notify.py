"""Payload, signing, the outbox and webhook delivery against a loopback receiver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from alerts.notify.delivery import Delivery
from alerts.notify.dispatch import Dispatcher
from alerts.notify.model import NotifyAlert, fingerprint, fingerprints
from alerts.notify.outbox import Outbox
from alerts.notify.payload import build_payload, group_key
from alerts.notify.signing import SIGNATURE_HEADER, verify
from alerts.notify.silences import Silences
from alerts.notify.targets import Target
from alerts.settings import DeliverySettings, NotifySettings
from runtime.clock import VirtualClock
from tests.support.external import require_data

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
GENERATOR = "http://prometheus.example:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"


def _down(instance: str, job: str, starts: int, ends: int) -> NotifyAlert:
    return NotifyAlert(
        (("alertname", "InstanceDown"), ("instance", instance), ("job", job), ("severity", "page")),
        (
            (
                "description",
                f"{instance} of job {job} has been down for more than 5 minutes.",
            ),
            ("summary", f"Instance {instance} down"),
        ),
        starts,
        ends,
        GENERATOR,
    )


# The alerts of Alertmanager's example payload: one firing, one resolved.
ALERTS = [
    _down("localhost:9090", "prometheus", T0 + 300_000, 0),
    _down("localhost:9100", "node_exporter", T0 + 180_000, T0 + 540_000),
]


def test_payload_matches_alertmanager_example_field_by_field() -> None:
    ex = json.loads(require_data("alertmanager/webhook_v4_example.json").read_text())
    got = build_payload(
        "team\\.webhook",
        ALERTS,
        (("alertname", "InstanceDown"),),
        group_key('{}/{severity="page"}', (("alertname", "InstanceDown"),)),
        "http://alertmanager.example:9093",
        T0 + 600_000,
    )
    # The example also has two fields Alertmanager 0.25's webhook does not send
    # (test_webhook_contract.py compares with a real one): foresight sends neither.
    ex = {k: v for k, v in ex.items() if k not in ("notification_reason", "routeLabels")}
    assert set(got) == set(ex)
    for field in ex:
        assert got[field] == ex[field], field


def test_truncated_alerts() -> None:
    got = build_payload("r", ALERTS, (), "{}:{}", "", T0 + 600_000, max_alerts=1)
    assert len(got["alerts"]) == 1
    assert got["truncatedAlerts"] == 1


class Receiver:
    """A loopback webhook receiver that fails on purpose, then records."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = script
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.read()
        if self.script:
            status, headers = self.script.pop(0)
            return web.Response(status=status, headers=headers)
        self.received.append((dict(request.headers), body))
        return web.Response(status=200)


@pytest.fixture
async def receiver(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver(list(request.param))
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield rec, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def _deliver_all(delivery: Delivery, clock: VirtualClock, rounds: int = 20) -> None:
    for _ in range(rounds):
        wait = await delivery.step()
        if wait is None:
            return
        clock.advance(wait)


@pytest.mark.parametrize(
    "receiver",
    [[(500, {}), (503, {}), (429, {"Retry-After": "120"})]],
    indirect=True,
)
async def test_retries_then_delivers_once_signed(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    rec, url = receiver
    clock = VirtualClock(T0 / 1000, autoadvance=False)
    outbox = Outbox(tmp_path)
    r = Target("hook", "webhook", 0, url, secret=SecretStr("s3cret"))
    settings = DeliverySettings(initial_backoff_seconds=1, jitter=0)
    async with httpx.AsyncClient() as client:
        delivery = Delivery({"hook": r}, outbox, clock, settings, client)
        entry = outbox.enqueue("hook", b'{"a":1}', int(clock.now() * 1000))
        start = clock.now()
        await _deliver_all(delivery, clock)
    assert rec.calls == 4
    assert len(rec.received) == 1
    headers, body = rec.received[0]
    assert body == b'{"a":1}'
    assert headers["Idempotency-Key"] == entry.id
    assert verify(b"s3cret", headers[SIGNATURE_HEADER], body, clock.now())
    assert not verify(b"wrong", headers[SIGNATURE_HEADER], body, clock.now())
    assert clock.now() - start >= 120  # Retry-After honoured
    assert outbox.pending == {}
    outbox.close()


@pytest.mark.parametrize("receiver", [[(400, {})]], indirect=True)
async def test_4xx_is_rejected_without_retry(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    rec, url = receiver
    clock = VirtualClock(T0 / 1000, autoadvance=False)
    outbox = Outbox(tmp_path)
    r = Target("hook", "webhook", 0, url)
    async with httpx.AsyncClient() as client:
        delivery = Delivery({"hook": r}, outbox, clock, DeliverySettings(), client)
        outbox.enqueue("hook", b"{}", int(clock.now() * 1000))
        await _deliver_all(delivery, clock)
    assert rec.calls == 1
    assert outbox.counts["rejected"] == 1
    outbox.close()


async def test_dead_letter_when_receiver_is_down(tmp_path: Path) -> None:
    clock = VirtualClock(T0 / 1000, autoadvance=False)
    outbox = Outbox(tmp_path)
    r = Target("hook", "webhook", 0, "http://127.0.0.1:9/down", timeout_seconds=1)
    settings = DeliverySettings(jitter=0, dead_letter_after_seconds=60)
    async with httpx.AsyncClient() as client:
        delivery = Delivery({"hook": r}, outbox, clock, settings, client)
        outbox.enqueue("hook", b"{}", int(clock.now() * 1000))
        await _deliver_all(delivery, clock)
    outbox.close()
    reopened = Outbox(tmp_path)
    assert reopened.pending == {}
    assert len(reopened.dead) == 1
    reopened.close()


def test_outbox_survives_restart_and_torn_tail(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    ids = [box.enqueue("hook", f"{i}".encode(), i).id for i in range(10)]
    for i in ids[:4]:
        box.finish(i, "delivered")
    box.close()
    with (tmp_path / "outbox.log").open("ab") as f:
        f.write(b"\x05\x00\x00")  # a crash in the middle of a record
    again = Outbox(tmp_path)
    assert list(again.pending) == ids[4:]
    again.close()


def test_dispatcher_groups_and_does_not_renotify_after_restart(tmp_path: Path) -> None:
    settings = NotifySettings.model_validate(
        {
            "receivers": [{"name": "hook", "webhook_configs": [{"url": "http://127.0.0.1:1/"}]}],
            "route": {"receiver": "hook", "group_wait": "30s", "group_interval": "5m"},
        }
    )
    outbox = Outbox(tmp_path)
    silences = Silences(tmp_path, 86_400_000)
    d = Dispatcher(settings, outbox, silences, tmp_path)
    a = NotifyAlert((("alertname", "A"), ("i", "1")), (), T0, T0 + 240_000)
    b = NotifyAlert((("alertname", "A"), ("i", "2")), (), T0, T0 + 240_000)
    d.put([a, b], T0)
    assert d.flush(T0) == 0  # group_wait
    assert d.flush(T0 + 30_000) == 1
    body = json.loads(next(iter(outbox.pending.values())).body)
    assert sorted(x["labels"]["i"] for x in body["alerts"]) == ["1", "2"]
    # restart: the same alerts re-sent by the rules produce no duplicate notification
    d2 = Dispatcher(settings, outbox, silences, tmp_path)
    later = [NotifyAlert(x.labels, (), T0, T0 + 900_000) for x in (a, b)]
    d2.put(later, T0 + 60_000)
    assert d2.flush(T0 + 330_000) == 0
    # resolution is notified
    d2.put([NotifyAlert(a.labels, (), T0, T0 + 400_000)], T0 + 400_000)  # a resolved
    assert d2.flush(T0 + 630_000) == 1
    outbox.close()


@given(
    st.lists(
        st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=6),
        max_size=40,
    )
)
def test_fingerprints_together_are_each_alone(label_maps: list[dict[str, str]]) -> None:
    """Label sets hashed together (one byte position over all of them) give the
    fingerprint each gets alone."""
    sets = [tuple(sorted(m.items())) for m in label_maps]
    # From maps: hashed afresh, never from what ``fingerprints`` remembered.
    assert fingerprints(sets) == [fingerprint(m) for m in label_maps]
