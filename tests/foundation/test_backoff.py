"""The shared backoff schedule and the ``Retry-After`` parser."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.backoff import Backoff, retry_after_seconds

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def _never() -> float:
    raise AssertionError("no jitter asked for, so no random draw")


# The schedule.


def test_doubles_from_the_initial_pause_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 30)
    assert [backoff.delay(a, rand=_never) for a in range(1, 9)] == [
        0.5,
        1,
        2,
        4,
        8,
        16,
        30,
        30,
    ]


def test_a_target_failing_for_days_stays_at_the_cap() -> None:
    assert Backoff(5, 300).delay(100_000) == 300
    assert Backoff(1e-300, 1e300).delay(100_000) == 1e300


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="attempts count from 1, got 0"):
        Backoff(1, 10).delay(0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_s": -1, "max_s": 10}, "Backoff.initial_s: need a finite number >= 0, got -1"),
        ({"initial_s": 1, "max_s": float("inf")}, "Backoff.max_s: .* got inf"),
        ({"initial_s": 1, "max_s": 10, "jitter": float("nan")}, "Backoff.jitter: .* got nan"),
        ({"initial_s": 1, "max_s": 10, "attempts": -1}, "Backoff.attempts: need >= 0"),
    ],
)
def test_bad_fields_are_named(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_jitter_stretches_each_pause_by_at_most_its_share_and_never_past_the_cap() -> None:
    backoff = Backoff(1, 100, jitter=0.5)
    rng = random.Random(7)
    seen = []
    for attempt in range(1, 12):
        base = min(2.0 ** (attempt - 1), 100)
        for _ in range(50):
            pause = backoff.delay(attempt, rand=rng.random)
            assert base <= pause <= min(base * 1.5, 100)
            seen.append(pause)
    # The draws really spread the pauses, and the same seed gives the same pauses.
    assert len(set(seen)) > 300
    again = random.Random(7)
    assert [backoff.delay(a, rand=again.random) for a in range(1, 12) for _ in range(50)] == seen


def test_jitter_draws_from_the_source_given() -> None:
    backoff = Backoff(2, 100, jitter=0.25)
    assert backoff.delay(3, rand=lambda: 0.0) == 8
    assert backoff.delay(3, rand=lambda: 0.5) == 9
    assert backoff.delay(7, rand=lambda: 0.99) == 100


def test_retry_after_wins_when_longer() -> None:
    backoff = Backoff(1, 60)
    assert backoff.delay(1, retry_after=10) == 10
    assert backoff.delay(5, retry_after=3) == 16  # the schedule is longer: it stands
    assert backoff.delay(1, retry_after=0) == 1


def test_retry_after_is_capped_unless_the_schedule_waits_it_in_full() -> None:
    assert Backoff(1, 60).delay(1, retry_after=600) == 60
    assert Backoff(1, 60, cap_retry_after=False).delay(1, retry_after=600) == 600


def test_retry_after_applies_after_jitter() -> None:
    backoff = Backoff(1, 300, jitter=0.2, cap_retry_after=False)
    assert backoff.delay(1, retry_after=30, rand=lambda: 0.9) == 30
    assert backoff.delay(8, retry_after=30, rand=lambda: 0.5) == pytest.approx(140.8)


def test_exhausted_after_the_attempts_allowed() -> None:
    assert [Backoff(1, 10, attempts=3).exhausted(a) for a in (1, 3, 4)] == [False, False, True]
    assert Backoff(0, 0, attempts=0).exhausted(1)
    assert not Backoff(1, 10).exhausted(10**9)


# The parser.


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), (" 7 ", 7.0), ("0", 0.0)])
def test_delta_seconds(value: str, seconds: float) -> None:
    assert retry_after_seconds(value, NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "Sat, 01 Mar 2025 12:00:30 GMT",  # IMF-fixdate, the one to send
        "Saturday, 01-Mar-25 12:00:30 GMT",  # obsolete RFC 850
        "Sat Mar  1 12:00:30 2025",  # asctime, which names no zone: UTC
    ],
)
def test_http_date_in_the_future(value: str) -> None:
    assert retry_after_seconds(value, NOW) == 30.0


def test_http_date_in_the_past_means_now() -> None:
    assert retry_after_seconds("Sat, 01 Mar 2025 11:00:00 GMT", NOW) == 0.0


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "soon",
        "-5",
        "1.5",
        "1e3",
        "inf",
        "nan",
        "٣",
        "9" * 400,
        "Mon, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 99999 08:49:37 GMT",
    ],
)
def test_garbage_is_none(value: str | None) -> None:
    assert retry_after_seconds(value, NOW) is None


# Properties.

schedules = st.builds(
    Backoff,
    initial_s=st.floats(0, 1e6),
    max_s=st.floats(0, 1e7),
    jitter=st.floats(0, 1),
    cap_retry_after=st.booleans(),
)
retry_afters = st.none() | st.floats(0, 1e9)
draws = st.floats(0, 1, exclude_max=True)


@given(schedules, st.integers(1, 5_000), retry_afters, draws)
def test_never_past_the_cap_but_for_a_longer_retry_after_let_through(
    backoff: Backoff, attempt: int, retry_after: float | None, draw: float
) -> None:
    pause = backoff.delay(attempt, retry_after, rand=lambda: draw)
    if backoff.cap_retry_after or retry_after is None:
        assert pause <= backoff.max_s
    else:
        assert pause <= max(backoff.max_s, retry_after)


@given(schedules, st.integers(1, 5_000), st.floats(0, 1e9), draws)
def test_never_below_retry_after_up_to_the_cap(
    backoff: Backoff, attempt: int, retry_after: float, draw: float
) -> None:
    pause = backoff.delay(attempt, retry_after, rand=lambda: draw)
    floor = min(retry_after, backoff.max_s) if backoff.cap_retry_after else retry_after
    assert pause >= floor


@given(st.floats(0, 1e6), st.floats(0, 1e7), st.integers(1, 5_000), retry_afters)
def test_without_jitter_pauses_never_shrink(
    initial_s: float, max_s: float, attempt: int, retry_after: float | None
) -> None:
    backoff = Backoff(initial_s, max_s)
    assert backoff.delay(attempt, retry_after) <= backoff.delay(attempt + 1, retry_after)


@given(st.integers(0, 10**15))
def test_any_count_of_seconds_reads_back(seconds: int) -> None:
    assert retry_after_seconds(str(seconds), NOW) == float(seconds)


@given(st.integers(-(10**6), 10**6))
def test_any_http_date_reads_as_the_time_left(offset: int) -> None:
    when = datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=offset)
    assert retry_after_seconds(format_datetime(when, usegmt=True), NOW) == max(0, offset)


@given(st.text(max_size=40))
def test_any_text_is_none_or_a_wait(value: str) -> None:
    seconds = retry_after_seconds(value, NOW)
    assert seconds is None or seconds >= 0
