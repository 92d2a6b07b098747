"""Alerts made in a round and changed again in it (``fresh``) end as without it, copied once,
and the alerts readers hold stay as they were."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alerts.rules.state import Alert, Found, Fresh, Labels, step, to_send

KEYS: list[Labels] = [(("alertname", "A"), ("i", str(i))) for i in range(4)]


@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from([None, 0.0, -0.0, 1.0, 2.0]), min_size=4, max_size=4),
            st.sampled_from([30_000, 60_000, 16 * 60_000]),
            st.booleans(),
        ),
        min_size=1,
        max_size=25,
    ),
    st.sampled_from([0, 60_000, 120_000]),
    st.sampled_from([0, 60_000, 180_000]),
)
def test_fresh_alerts_change_in_place_with_the_same_outcome(
    rounds: list[tuple[list[float | None], int, bool]], for_ms: int, keep_ms: int
) -> None:
    plain: dict[Labels, Alert] = {}
    active: dict[Labels, Alert] = {}
    ts = 0
    for values, gap, send in rounds:
        ts += gap
        found = {
            k: Found((("v", repr(v)),), v)
            for k, v in zip(KEYS, values, strict=True)
            if v is not None
        }
        readers = dict(active)
        seen = {k: dict(vars(a)) for k, a in readers.items()}
        work = dict(active)
        fresh: Fresh = {}
        moved = step(work, found, ts, for_ms, keep_ms, 0, fresh)
        assert moved == step(plain, found, ts, for_ms, keep_ms)
        if send:
            sent = to_send(work, ts, 60_000, 30_000, fresh)
            sent_plain = to_send(plain, ts, 60_000, 30_000)
            assert [vars(a) for a in sent] == [vars(a) for a in sent_plain]
        assert {k: vars(a) for k, a in work.items()} == {k: vars(a) for k, a in plain.items()}
        assert {k: dict(vars(a)) for k, a in readers.items()} == seen
        # Whatever changed is a new object, made once: every alert not the readers' is fresh.
        changed = [a for k, a in work.items() if readers.get(k) is not a]
        assert all(fresh.get(id(a)) is a for a in changed)
        active = work
