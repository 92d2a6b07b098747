"""Matchers of silences, routes and inhibitions are RE2's, as Alertmanager's: a pathological
pattern costs milliseconds, what Alertmanager rejects is rejected (API 400, ``foresight silence
add``), and against a real Alertmanager 0.25 the same matchers are accepted and select the same
alerts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from alerts import api
from alerts.notify.matchers import matches, parse_matchers
from alerts.notify.silences import FILE, Silences
from autoscaler.cli.main import main
from runtime.clock import RealClock
from tests.alerts.test_alertmanager import alertmanager
from tsdb.recordlog import frame, write_atomically

__all__ = ["alertmanager"]  # the real Alertmanager fixture, shared with its own tests

NOW = datetime.now(UTC).replace(microsecond=0)
STARTS = (NOW - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
ENDS = (NOW + timedelta(hours=1)).isoformat().replace("+00:00", "Z")

ACCEPTED = [
    "a.b",
    "(?s)a.b",
    ".*",
    ".+",
    "a+",
    "(?i)A",
    r"\d",
    r"\d\.\d",
    "api-.*|web-.*",
    "api-(1|2)",
    "(.*.*)*Z",
    "[[:alpha:]]+",
    r"\pL",
    r"\Q(a)\E",
    "(?U)a+",
    r"\bab",
    "a|",
    "(?P<n>a)b",
    "é",
    "x?Z",
    "line1.line2",
    "(?m)^line2$",
    "[^a]b",
]
REJECTED = [r"(a)\1", "(?=x)", "(?<n>a)", r"\C", "a++", "a)|(b", "[z-a]", r"\Z", "a{1001}", "("]
VALUES = [
    "",
    "a",
    "ab",
    "abc",
    "a\nb",
    "\nb",
    "xZ",
    "Z",
    "aaaaZ",
    "é",
    "A",
    "api-1",
    "web-2",
    "1.5",
    "a.b",
    "axb",
    "(a)",
    "line1\nline2",
    "7",
]


def _silence(pattern: str, equal: bool = True) -> dict[str, Any]:
    return {
        "matchers": [
            {"name": "alertname", "value": "Re2Check", "isRegex": False, "isEqual": True},
            {"name": "v", "value": pattern, "isRegex": True, "isEqual": equal},
        ],
        "startsAt": STARTS,
        "endsAt": ENDS,
        "createdBy": "test",
        "comment": pattern,
    }


def _filter(pattern: str) -> str:
    quoted = pattern.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'v=~"{quoted}"'


@pytest.fixture
async def foresight(tmp_path: Path) -> AsyncIterator[tuple[str, Silences]]:
    silences = Silences(tmp_path, 3_600_000)
    app = web.Application()
    app.add_routes(api.routes(list, silences, lambda: round(RealClock().now() * 1000)))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}", silences  # type: ignore[union-attr]
    await runner.cleanup()


async def test_pathological_silence_costs_milliseconds(
    foresight: tuple[str, Silences],
) -> None:
    url, silences = foresight
    async with httpx.AsyncClient(base_url=url) as http:
        created = await http.post("/api/v2/silences", json=_silence("(.*.*)*Z"))
    assert created.status_code == 200
    now = round(RealClock().now() * 1000)
    started = time.perf_counter()
    for n in (30, 60, 1_000):
        labels = {"alertname": "Re2Check", "v": "a" * n}
        assert silences.muted_by(labels, now) == []
        assert silences.muted_by({**labels, "v": "a" * n + "Z"}, now) != []
    assert time.perf_counter() - started < 0.05


async def test_rejected_patterns_get_a_clear_400(
    foresight: tuple[str, Silences], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = foresight
    async with httpx.AsyncClient(base_url=url) as http:
        bad = await http.post("/api/v2/silences", json=_silence(r"(a)\1"))
        assert bad.status_code == 400
        assert bad.json() == (
            "Failed to create silence: matchers: invalid regular expression '(a)\\\\1': "
            "invalid escape sequence: \\1"
        )
        look = await http.post("/api/v2/silences", json=_silence("(?=x)"))
        assert look.status_code == 400 and "invalid perl operator: (?=" in look.json()
        listed = await http.get("/api/v2/silences", params={"filter": 'v=~"(?=x)"'})
        assert listed.status_code == 400 and "invalid regular expression" in listed.json()
    code = await asyncio.to_thread(main, ["silence", "--url", url, "add", r'v=~"(a)\1"', "-c", "x"])
    err = capsys.readouterr().err
    assert code == 1 and "invalid matcher" in err and r"invalid escape sequence: \1" in err


def test_a_saved_silence_that_no_longer_compiles_is_dropped(tmp_path: Path) -> None:
    good, bad = _silence("a+"), _silence(r"(a)\1")
    saved = [
        {**good, "id": "good", "updatedAt": STARTS},
        {**bad, "id": "bad", "updatedAt": STARTS},
    ]
    write_atomically(tmp_path / FILE, frame(1, json.dumps(saved).encode()))
    assert [s.id for s in Silences(tmp_path, 3_600_000).query(0)] == ["good"]


async def test_same_matchers_as_alertmanager(
    alertmanager: str, foresight: tuple[str, Silences]
) -> None:
    url, silences = foresight
    alerts = [
        {"labels": {"alertname": "Re2Check", "i": str(i), "v": v}, "startsAt": STARTS}
        for i, v in enumerate(VALUES)
    ]
    async with httpx.AsyncClient() as http:
        (await http.post(f"{alertmanager}/api/v2/alerts", json=alerts)).raise_for_status()
        am_ids: dict[str, str] = {}
        for pattern in ACCEPTED + REJECTED:
            am = await http.post(f"{alertmanager}/api/v2/silences", json=_silence(pattern))
            ours = await http.post(f"{url}/api/v2/silences", json=_silence(pattern))
            assert (pattern, ours.status_code) == (pattern, am.status_code), am.text
            if am.status_code == 200:
                am_ids[am.json()["silenceID"]] = pattern
        assert set(am_ids.values()) == set(ACCEPTED)
        # Silencing: which pattern mutes which alert.
        listed = (await http.get(f"{alertmanager}/api/v2/alerts")).json()
        assert len(listed) == len(VALUES)
        theirs = {
            (a["labels"].get("v", ""), am_ids[sid])
            for a in listed
            for sid in a["status"]["silencedBy"]
        }
        now = round(RealClock().now() * 1000)
        by_id = {s.id: s.comment for s in silences.query(now)}
        mine = {
            (v, by_id[sid])
            for v in VALUES
            for sid in silences.muted_by({"alertname": "Re2Check", "v": v}, now)
        }
        assert mine == theirs
        assert len(theirs) > 40  # the patterns select, not just reject
        # Filters: Alertmanager's matcher syntax, parsed and matched by each side.
        for pattern in ACCEPTED:
            text = _filter(pattern)
            got = await http.get(f"{alertmanager}/api/v2/alerts", params={"filter": text})
            am_values = sorted(a["labels"].get("v", "") for a in got.json())
            ours_values = sorted(
                v for v in VALUES if matches(parse_matchers(text), {"alertname": "x", "v": v})
            )
            assert (pattern, ours_values) == (pattern, am_values)
