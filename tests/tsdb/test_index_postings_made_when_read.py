"""Postings of a label name are made when a selection first reads that name: every answer
is as if they had been kept all along."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tsdb.index import SeriesIndex
from tsdb.labels import Labels, Matcher, MatchType, make_labels


def _labels(i: int, pod: int) -> Labels:
    extra = {"rare": "yes"} if i % 5 == 4 else {}
    return make_labels({"__name__": "m", "i": str(i), "pod": f"p{pod}", "n": str(i % 3), **extra})


def test_names_never_read_keep_no_postings_until_a_selection_reads_them() -> None:
    index = SeriesIndex()
    one = [index.add(_labels(i, i % 4)) for i in range(5)]
    many = index.add_many([_labels(i, i % 4) for i in range(5, 12)]).tolist()
    more = [index.add(_labels(i, i % 4)) for i in range(12, 14)]
    assert "pod" not in index._postings
    assert index.label_names() == ["__name__", "i", "n", "pod", "rare"]
    ids = one + many + more
    got = index.select([Matcher(MatchType.EQUAL, "pod", "p1")]).tolist()
    assert got == [sid for k, sid in enumerate(ids) if k % 4 == 1]
    # Read once, the name's postings are kept up to date from then on.
    assert "pod" in index._postings
    later = index.add(_labels(14, 1))
    assert index.select([Matcher(MatchType.EQUAL, "pod", "p1")]).tolist() == [*got, later]
    assert index.label_values("pod") == ["p0", "p1", "p2", "p3"]


def test_a_name_that_came_late_is_found_from_its_first_pair() -> None:
    # "A" sorts before "__name__": its pair is the first of each label set that has it.
    index = SeriesIndex()
    index.add_many([_labels(i, i) for i in range(4)])
    late = [index.add(make_labels({"A": "x", "__name__": "m"}))]
    late += index.add_many(
        [make_labels({"A": "x", "__name__": f"m{i}"}) for i in range(2)]
    ).tolist()
    assert index.select([Matcher(MatchType.EQUAL, "A", "x")]).tolist() == late


def test_forgotten_series_are_left_out_of_postings_made_later() -> None:
    index = SeriesIndex()
    ids = index.add_many([_labels(i, i) for i in range(6)]).tolist()
    solo = index.add(_labels(6, 6))
    index.remove([ids[2], solo])
    assert "pod" not in index._postings
    assert index.label_values("pod") == ["p0", "p1", "p3", "p4", "p5"]
    assert index.label_names() == ["__name__", "i", "n", "pod", "rare"]
    # The shared tuple of a forgotten series' pair is let go.
    assert ("pod", "p6") not in index._pairs
    # The last series with a label name takes the name with it.
    index.remove([ids[4]])
    assert index.label_names() == ["__name__", "i", "n", "pod"]
    regex = Matcher(MatchType.REGEX, "pod", "p[0-9]")
    assert index.select([regex]).tolist() == [s for s in ids if s not in (ids[2], ids[4])]


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 5), st.integers(1, 6)),
            st.tuples(st.just("remove"), st.integers(0, 30), st.integers(0, 0)),
            st.tuples(st.just("select"), st.integers(0, 5), st.integers(0, 1)),
        ),
        max_size=25,
    )
)
def test_selections_agree_with_the_label_sets(steps: list[tuple[str, int, int]]) -> None:
    index = SeriesIndex()
    live: dict[int, Labels] = {}
    counter = 0
    for kind, a, b in steps:
        if kind == "add":
            batch = []
            for _ in range(b):
                batch.append(_labels(counter, (counter * 7 + a) % 6))
                counter += 1
            # One by one (as scrapes make them) or together (as rules do).
            made = [index.add(lb) for lb in batch] if a % 2 else index.add_many(batch).tolist()
            live.update(zip(made, batch, strict=True))
        elif kind == "remove":
            gone = sorted(live)[a::7]
            index.remove(gone)
            for sid in gone:
                del live[sid]
        else:
            name, value = ("pod", f"p{a}") if b else ("n", str(a % 3))
            got = index.select([Matcher(MatchType.EQUAL, name, value)]).tolist()
            want = sorted(sid for sid, lb in live.items() if dict(lb)[name] == value)
            assert got == want
    for name in ("pod", "n", "rare"):
        values = sorted({dict(lb)[name] for lb in live.values() if name in dict(lb)})
        assert index.label_values(name) == values
        for v in values:
            got = index.select([Matcher(MatchType.EQUAL, name, v)]).tolist()
            assert got == sorted(s for s, lb in live.items() if dict(lb).get(name) == v)
    assert index.label_names() == sorted({k for lb in live.values() for k, _ in lb})
    assert np.array_equal(index.all_ids(), np.array(sorted(live), dtype=np.int32))
