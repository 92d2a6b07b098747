"""Courses of four alerts over rounds, for property tests of the alert state machine:
values that go, come back, move and turn -0, gaps between rounds, sends after some, and the
rule's ``for`` and ``keep_firing_for``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from alerts.rules.state import Found, Labels

KEYS: list[Labels] = [(("alertname", "A"), ("i", str(i))) for i in range(4)]

Round = tuple[list[float | None], int, bool]


@dataclass(frozen=True)
class Course:
    """Rounds (each alert's value, None for no series; the gap since the round before;
    whether alerts are sent after it) of a rule with ``for_ms`` and ``keep_ms``."""

    rounds: list[Round]
    for_ms: int
    keep_ms: int

    def timed(self) -> Iterator[tuple[int, dict[Labels, Found], bool]]:
        """Each round's time, what the rule's query found of :data:`KEYS`, and the send."""
        ts = 0
        for values, gap, send in self.rounds:
            ts += gap
            found = {
                k: Found((("v", repr(v)),), v)
                for k, v in zip(KEYS, values, strict=True)
                if v is not None
            }
            yield ts, found, send


def courses(gaps_ms: Sequence[int]) -> st.SearchStrategy[Course]:
    """Courses of up to 25 rounds, ``gaps_ms`` apart."""
    values = st.lists(st.sampled_from([None, 0.0, -0.0, 1.0, 2.0]), min_size=4, max_size=4)
    rounds = st.lists(
        st.tuples(values, st.sampled_from(gaps_ms), st.booleans()), min_size=1, max_size=25
    )
    return st.builds(
        Course,
        rounds,
        st.sampled_from([0, 60_000, 120_000]),
        st.sampled_from([0, 60_000, 180_000]),
    )
