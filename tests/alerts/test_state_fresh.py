"""Alerts made in a round and changed again in it (``fresh``) end as without it, copied once,
and the alerts readers hold keep their state and times (values move in place)."""

from __future__ import annotations

from hypothesis import given

from alerts.rules.state import Alert, Fresh, Labels, step, to_send
from tests.support import alert_rounds

# What moves in place: the value, and the annotations printed with it.
_IN_PLACE = ("value", "notes", "_printed")


def _held(alerts: dict[Labels, Alert]) -> dict[Labels, dict[str, object]]:
    return {k: {f: v for f, v in vars(a).items() if f not in _IN_PLACE} for k, a in alerts.items()}


@given(alert_rounds.courses([30_000, 60_000, 16 * 60_000]))
def test_fresh_alerts_change_in_place_with_the_same_outcome(course: alert_rounds.Course) -> None:
    for_ms, keep_ms = course.for_ms, course.keep_ms
    plain: dict[Labels, Alert] = {}
    active: dict[Labels, Alert] = {}
    for ts, found, send in course.timed():
        readers = dict(active)
        seen = _held(readers)
        work = dict(active)
        fresh: Fresh = {}
        moved = step(work, found, ts, for_ms, keep_ms, 0, fresh)
        assert moved == step(plain, found, ts, for_ms, keep_ms)
        if send:
            sent = to_send(work, ts, 60_000, 30_000, fresh)
            sent_plain = to_send(plain, ts, 60_000, 30_000)
            assert [vars(a) for a in sent] == [vars(a) for a in sent_plain]
        assert {k: vars(a) for k, a in work.items()} == {k: vars(a) for k, a in plain.items()}
        assert _held(readers) == seen
        # Whatever changed is a new object, made once: every alert not the readers' is fresh.
        changed = [a for k, a in work.items() if readers.get(k) is not a]
        assert all(fresh.get(id(a)) is a for a in changed)
        active = work
