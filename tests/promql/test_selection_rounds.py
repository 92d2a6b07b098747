"""Selections asked again in later rounds (kept by the index and extended with the series
added since) give what a fresh selection gives: checked against the matchers applied to
every label set, over batches of new series (forgetting series is covered by the store's
model test, tests/tsdb/test_store_model.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings
from tsdb.labels import Labels, Matcher

T0 = 1_700_000_000_000
SELECTORS = [
    [Matcher.parse("__name__", "=", "up")],
    [Matcher.parse("__name__", "=", "up"), Matcher.parse("job", "=~", "a|b")],
    [Matcher.parse("__name__", "=~", ".+"), Matcher.parse("job", "!=", "a")],
    [Matcher.parse("job", "!~", "b.*"), Matcher.parse("pod", "=~", "p[0-3]")],
    [Matcher.parse("pod", "=", "")],
]

series_st = st.tuples(
    st.sampled_from(["up", "down"]),
    st.sampled_from(["a", "b", "bb", "c"]),
    st.one_of(st.none(), st.sampled_from([f"p{i}" for i in range(6)])),
)


def _labels(name: str, job: str, pod: str | None) -> dict[str, str]:
    labels = {"__name__": name, "job": job}
    if pod is not None:
        labels["pod"] = pod
    return labels


def _expected(created: list[Labels], matchers: list[Matcher]) -> list[Labels]:
    return sorted(
        lb for lb in created if all(m.matches(dict(lb).get(m.name, "")) for m in matchers)
    )


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(series_st, max_size=12), min_size=1, max_size=6))
def test_a_selection_asked_again_sees_the_series_added_since(
    batches: list[list[tuple[str, str, str | None]]],
) -> None:
    store = Store(StoreSettings(), VirtualClock(T0 / 1000), persistent=False)
    created: set[Labels] = set()
    for k, batch in enumerate(batches):
        for name, job, pod in batch:
            ref = store.ref(_labels(name, job, pod))
            store.append(ref, T0 + k * 1000, 1.0)
            created.add(store.labels(ref))
        for matchers in SELECTORS:
            assert sorted(store.series(matchers)) == _expected(list(created), matchers)
