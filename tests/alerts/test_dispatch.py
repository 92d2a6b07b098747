"""Aggregation groups, their timers and dedup, muting, and silences — pure, on plain times."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alerts.notify.dispatch import Dispatcher
from alerts.notify.matchers import parse_matchers
from alerts.notify.model import NotifyAlert
from alerts.notify.outbox import Outbox
from alerts.notify.silences import Silence, SilenceError, SilenceNotFound, Silences
from alerts.settings import NotifySettings

T0 = 1_767_225_600_000
S = 1_000
M = 60_000


def _settings(**extra: Any) -> NotifySettings:
    config: dict[str, Any] = {
        "receivers": [
            {"name": "hook", "webhook_configs": [{"url": "http://127.0.0.1:1/"}]},
            {
                "name": "quiet",
                "webhook_configs": [{"url": "http://127.0.0.1:1/q", "send_resolved": False}],
            },
            {"name": "am", "alertmanager_configs": [{"url": "http://127.0.0.1:1"}]},
        ],
        "route": {
            "receiver": "hook",
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "1h",
            "routes": [
                {"matchers": ["team=quiet"], "receiver": "quiet"},
                {"matchers": ["forward=yes"], "receiver": "am", "continue": True},
            ],
        },
    }
    config.update(extra)
    return NotifySettings.model_validate(config)


class Rig:
    def __init__(self, tmp: Path, settings: NotifySettings | None = None) -> None:
        self.tmp = tmp
        self.settings = settings or _settings()
        self.outbox = Outbox(tmp)
        self.silences = Silences(tmp, 5 * 86_400_000)
        self.d = Dispatcher(self.settings, self.outbox, self.silences, tmp)
        self.seen = 0

    def new(self) -> list[dict[str, Any]]:
        """Bodies queued since the last call."""
        entries = list(self.outbox.pending.values())[self.seen :]
        self.seen += len(entries)
        return [json.loads(e.body) for e in entries]

    def restart(self) -> None:
        self.outbox.close()
        self.outbox = Outbox(self.tmp)
        self.silences = Silences(self.tmp, 5 * 86_400_000)
        self.d = Dispatcher(self.settings, self.outbox, self.silences, self.tmp)
        self.seen = len(self.outbox.pending)


def alert(name: str, start: int, end: int = 0, **labels: str) -> NotifyAlert:
    return NotifyAlert(tuple(sorted({"alertname": name, **labels}.items())), (), start, end)


def firing(name: str, now: int, start: int | None = None, **labels: str) -> NotifyAlert:
    """As the rules (re-)send it: valid for four minutes from ``now``."""
    return alert(name, T0 if start is None else start, now + 4 * M, **labels)


def test_group_wait_then_interval_then_repeat(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.d.put([firing("A", T0, i="1")], T0)
    assert r.d.flush(T0 + 29 * S) == 0
    assert r.d.next_flush_ms() == T0 + 30 * S
    r.d.flush(T0 + 30 * S)
    (first,) = r.new()
    assert first["groupKey"] == '{}:{alertname="A"}' and first["status"] == "firing"
    # A second alert joins: announced at the next group_interval, not before.
    r.d.put([firing("A", T0 + M, T0 + M, i="2"), firing("A", T0 + M, i="1")], T0 + M)
    assert r.d.flush(T0 + 4 * M) == 0
    t = T0 + 30 * S + 5 * M
    r.d.put([firing("A", t, T0 + M, i="2"), firing("A", t, i="1")], t)
    r.d.flush(t)
    (second,) = r.new()
    assert sorted(a["labels"]["i"] for a in second["alerts"]) == ["1", "2"]
    # Nothing changes: silent until repeat_interval has passed (strictly, as Alertmanager).
    now = T0 + 30 * S + 5 * M
    for k in range(1, 14):
        t = now + k * 5 * M
        r.d.put([firing("A", t, i="1"), firing("A", t, T0 + M, i="2")], t)
        r.d.flush(t)
        if k < 13:
            assert r.new() == [], k
    (repeat,) = r.new()
    assert len(repeat["alerts"]) == 2


def test_resolution_is_notified_once_and_the_group_removed(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.d.put([firing("A", T0)], T0)
    r.d.flush(T0 + 30 * S)
    r.new()
    r.d.put([alert("A", T0, T0 + 2 * M)], T0 + 2 * M)  # resolved at +2m
    r.d.flush(T0 + 30 * S + 5 * M)
    (resolved,) = r.new()
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2026-01-01T00:02:00Z"
    assert r.d.groups == {} and r.d.alerts == {}


def test_alert_that_fired_and_resolved_between_flushes_is_not_announced(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.d.put([firing("A", T0, i="1")], T0)
    r.d.flush(T0 + 30 * S)
    r.new()
    r.d.put([alert("B", T0 + M, T0 + 2 * M)], T0 + 2 * M)
    r.d.put([firing("A", T0 + 10 * M, i="1")], T0 + 10 * M)
    r.d.flush(T0 + 10 * M)
    assert r.new() == []


def test_old_alert_skips_group_wait(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.d.put([firing("A", T0, T0 - 10 * M)], T0)
    assert r.d.flush(T0) == 1


def test_silence_mutes_until_expired(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    sid = r.silences.set(
        Silence(
            "", tuple(parse_matchers('alertname="A"')), T0, T0 + 3_600_000, "me", "maintenance"
        ),
        T0,
    )
    r.d.put([firing("A", T0), firing("B", T0)], T0)
    r.d.flush(T0 + 30 * S)
    bodies = r.new()
    assert [b["groupLabels"]["alertname"] for b in bodies] == ["B"]
    r.silences.expire(sid, T0 + M)
    r.d.put([firing("A", T0 + 5 * M), firing("B", T0 + 5 * M)], T0 + 5 * M)
    r.d.flush(T0 + 30 * S + 5 * M)
    assert [b["groupLabels"]["alertname"] for b in r.new()] == ["A"]


def test_inhibited_alert_is_not_notified(tmp_path: Path) -> None:
    r = Rig(
        tmp_path,
        _settings(
            inhibit_rules=[
                {
                    "source_matchers": ["severity=critical"],
                    "target_matchers": ["severity=warning"],
                    "equal": ["node"],
                }
            ]
        ),
    )
    r.d.put(
        [
            firing("NodeDown", T0, severity="critical", node="n1"),
            firing("Slow", T0, severity="warning", node="n1"),
            firing("Slow", T0, severity="warning", node="n2"),
        ],
        T0,
    )
    r.d.flush(T0 + 30 * S)
    got = {
        (b["groupLabels"]["alertname"], a["labels"]["node"]) for b in r.new() for a in b["alerts"]
    }
    assert got == {("NodeDown", "n1"), ("Slow", "n2")}


def test_send_resolved_false_sends_no_resolution(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.d.put([firing("A", T0, team="quiet")], T0)
    r.d.flush(T0 + 30 * S)
    (body,) = r.new()
    assert body["receiver"] == "quiet"
    r.d.put([alert("A", T0, T0 + M, team="quiet")], T0 + M)
    r.d.flush(T0 + 30 * S + 5 * M)
    assert r.new() == []
    assert r.d.groups == {}


def test_alertmanager_receiver_gets_every_alert_at_once(
    tmp_path: Path,
) -> None:
    r = Rig(tmp_path)
    assert r.d.put([firing("A", T0, forward="yes")], T0, send=False) == 0  # a standby
    assert r.d.put([firing("A", T0 + M, forward="yes")], T0 + M) == 1
    (entry,) = [e for e in r.outbox.pending.values() if e.receiver == "am/alertmanager/0"]
    (posted,) = json.loads(entry.body)
    assert posted["labels"] == {"alertname": "A", "forward": "yes"}
    assert posted["startsAt"] == "2026-01-01T00:00:00Z"  # the episode's start is kept
    assert posted["endsAt"] == "2026-01-01T00:05:00Z"
    # A child route took it, so the root's receiver does not get it; `am` has no grouped
    # integration, so no aggregation group exists.
    assert r.d.groups == {}


def test_restart_without_state_snapshot_does_not_renotify(tmp_path: Path) -> None:
    """The notification log travels with the queued notification: losing ``notify.state``
    (a crash right after queueing) neither repeats nor loses a notification."""
    r = Rig(tmp_path)
    r.d.put([firing("A", T0, i="1"), firing("A", T0, i="2")], T0)
    r.d.flush(T0 + 30 * S)
    assert len(r.new()) == 1
    (tmp_path / "notify.state").unlink()
    r.restart()
    r.d.put([firing("A", T0 + M, i="1"), firing("A", T0 + M, i="2")], T0 + M)
    r.d.flush(T0 + M)  # the alerts started long ago: flushed at once, but nothing changed
    assert r.new() == []
    r.d.put([alert("A", T0, T0 + 2 * M, i="1"), firing("A", T0 + 6 * M, i="2")], T0 + 6 * M)
    r.d.flush(T0 + 6 * M)
    (body,) = r.new()
    assert [a["status"] for a in body["alerts"]] == ["firing", "resolved"]
    r.outbox.close()


# -- silences ------------------------------------------------------------------------------


def _silence(text: str, start: int, end: int, sid: str = "") -> Silence:
    return Silence(sid, tuple(parse_matchers(text)), start, end, "alice", "why")


def test_silence_states_and_persistence(tmp_path: Path) -> None:
    s = Silences(tmp_path, 3_600_000)
    active = s.set(_silence('job="api"', T0 - M, T0 + 10 * M), T0)
    pending = s.set(_silence('job="db"', T0 + 5 * M, T0 + 10 * M), T0)
    assert s.get(active).starts_at == T0  # a start in the past becomes now
    assert s.muted_by({"job": "api"}, T0 + M) == [active]
    assert s.muted_by({"job": "db"}, T0 + M) == []
    assert s.muted_by({"job": "db"}, T0 + 6 * M) == [pending]
    s.expire(pending, T0 + M)
    assert s.get(pending).state(T0 + M) == "expired"
    assert s.muted_by({"job": "db"}, T0 + 6 * M) == []
    with pytest.raises(SilenceError, match="already expired"):
        s.expire(pending, T0 + 2 * M)
    again = Silences(tmp_path, 3_600_000)
    assert [x.id for x in again.query(T0 + M)] == [active, pending]
    assert again.get(active).to_api(T0 + M)["status"] == {"state": "active"}
    assert again.collect_garbage(T0 + M + 3_600_000) == 1
    assert [x.id for x in Silences(tmp_path, 3_600_000).query(T0)] == [active]


def test_silence_update_keeps_id_only_when_allowed(tmp_path: Path) -> None:
    s = Silences(tmp_path, 3_600_000)
    sid = s.set(_silence('job="api"', T0, T0 + 10 * M), T0)
    assert s.set(_silence('job="api"', T0, T0 + 20 * M, sid), T0 + M) == sid
    other = s.set(_silence('job="web"', T0, T0 + 20 * M, sid), T0 + 2 * M)
    assert other != sid
    assert s.get(sid).state(T0 + 2 * M) == "expired"
    with pytest.raises(SilenceNotFound):
        s.set(_silence('job="api"', T0, T0 + 20 * M, "nope"), T0)


@pytest.mark.parametrize(
    ("text", "start", "end", "message"),
    [
        ('job=~".*"', T0, T0 + M, "must not match the empty string"),
        ('job="a"', T0 + M, T0, "start time must be before end time"),
        ('job="a"', T0 - 2 * M, T0 - M, "end time can't be in the past"),
    ],
)
def test_invalid_silences(tmp_path: Path, text: str, start: int, end: int, message: str) -> None:
    with pytest.raises(SilenceError, match=message):
        Silences(tmp_path, M).set(_silence(text, start, end), T0)


def test_silence_query_filters_on_matchers(tmp_path: Path) -> None:
    s = Silences(tmp_path, M)
    a = s.set(_silence('job="api", env="prod"', T0, T0 + M), T0)
    s.set(_silence('job="db"', T0, T0 + M), T0)
    assert [x.id for x in s.query(T0, parse_matchers('env="prod"'))] == [a]


def test_the_saved_state_follows_resent_alerts_and_skips_unchanged_rounds(
    tmp_path: Path,
) -> None:
    """Rows of alerts re-sent with the same labels and annotations are encoded from their
    last text: what a restart reads is what was put last, times and changed text alike."""
    r = Rig(tmp_path)
    labels = tuple(sorted({"alertname": "Down", "team": "a, b", "x": 'q"uote'}.items()))
    notes = (("summary", "one, two"),)
    r.d.put([NotifyAlert(labels, notes, T0, T0 + 4 * M)], T0)
    r.d.save()
    r.d.put([NotifyAlert(labels, notes, T0, T0 + 5 * M, "http://x/?a=1, 2")], T0 + M)
    r.d.save()
    changed = (("summary", "three"),)
    other = tuple(sorted({"alertname": "Down", "team": "c"}.items()))
    r.d.put([NotifyAlert(labels, changed, T0, T0 + 6 * M), firing("Down", T0 + M, team="c")], T0)
    r.d.save()
    written = (tmp_path / "notify.state").stat().st_ino
    r.d.save()  # nothing changed: no new file put in its place
    assert (tmp_path / "notify.state").stat().st_ino == written
    r.restart()
    assert sorted(r.d.alerts.values(), key=lambda a: a.labels) == [
        NotifyAlert(labels, changed, T0, T0 + 6 * M),
        NotifyAlert(other, (), T0, T0 + 5 * M),
    ]
