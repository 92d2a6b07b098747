"""Forwarding to a real Alertmanager (Debian's ``prometheus-alertmanager``) on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alerts.notify.delivery import Delivery
from alerts.notify.dispatch import Dispatcher
from alerts.notify.model import NotifyAlert
from alerts.notify.outbox import Outbox
from alerts.notify.silences import Silences
from alerts.settings import NotifySettings
from runtime.clock import RealClock
from tests.support.external import require_binary

CONFIG = """route:
  receiver: blackhole
  group_by: [alertname]
receivers:
- name: blackhole
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    tmp = tmp_path_factory.mktemp("am")
    (tmp / "am.yml").write_text(CONFIG)
    port = _port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp / 'am.yml'}",
            f"--storage.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                assert proc.stderr is not None
                raise RuntimeError(f"alertmanager exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        else:
            raise RuntimeError("alertmanager did not become ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def _rig(tmp: Path, url: str) -> tuple[Dispatcher, Outbox, Delivery]:
    settings = NotifySettings.model_validate(
        {
            "receivers": [{"name": "am", "alertmanager_configs": [{"url": url}]}],
            "route": {"receiver": "am"},
            "delivery": {"jitter": 0},
        }
    )
    outbox = Outbox(tmp)
    dispatcher = Dispatcher(settings, outbox, Silences(tmp, 1), tmp, "http://foresight:8080")
    delivery = Delivery(dispatcher.targets, outbox, RealClock(), settings.delivery)
    return dispatcher, outbox, delivery


async def _am_alerts(url: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/api/v2/alerts")
        response.raise_for_status()
        result: list[dict[str, object]] = response.json()
        return result


async def test_forwarded_alerts_appear_and_resolve(alertmanager: str, tmp_path: Path) -> None:
    dispatcher, outbox, delivery = _rig(tmp_path, alertmanager)
    now = round(RealClock().now() * 1000)
    firing = NotifyAlert(
        (("alertname", "DiskFull"), ("instance", "n1"), ("severity", "page")),
        (("summary", "disk is full"),),
        now - 60_000,
        now + 240_000,
        "http://foresight:8080/graph?g0.expr=x",
    )
    assert dispatcher.put([firing], now) == 1
    assert await delivery.step() is None
    assert delivery.counts[("am", "sent")] == 1
    (got,) = await _am_alerts(alertmanager)
    assert got["labels"] == {"alertname": "DiskFull", "instance": "n1", "severity": "page"}
    assert got["annotations"] == {"summary": "disk is full"}
    assert got["generatorURL"] == "http://foresight:8080/graph?g0.expr=x"
    assert got["fingerprint"] == firing.fingerprint  # the same label fingerprint
    assert got["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    resolved = NotifyAlert(
        firing.labels, firing.annotations, firing.starts_at, now, firing.generator_url
    )
    dispatcher.put([resolved], now + 1)
    await delivery.step()
    await asyncio.sleep(0.05)
    assert await _am_alerts(alertmanager) == []
    await delivery.aclose()
    outbox.close()


async def test_alertmanager_rejection_is_not_retried(alertmanager: str, tmp_path: Path) -> None:
    _, outbox, delivery = _rig(tmp_path, alertmanager)
    now = round(RealClock().now() * 1000)
    # Ends before it starts: Alertmanager answers 400.
    body = [
        {
            "labels": {"alertname": "Bad"},
            "startsAt": "2030-01-01T00:00:00Z",
            "endsAt": "2029-01-01T00:00:00Z",
        }
    ]
    outbox.enqueue("am/alertmanager/0", json.dumps(body).encode(), now)
    assert await delivery.step() is None
    assert delivery.counts[("am", "rejected")] == 1
    assert delivery.attempts == 1
    await delivery.aclose()
    outbox.close()
