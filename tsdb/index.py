"""The series index: label sets to series ids, and an inverted index for matchers.

Series ids are assigned in increasing order and never reused, so every postings list is
sorted by construction and can be intersected with numpy without sorting. Each series'
labels are also kept as integers (a small dense id per label name, the value's code in a
:class:`StringTable`; pairs end to end, ``pair_start[sid]`` to ``pair_start[sid + 1]``), so
the label sets of many series come out as one integer matrix instead of a tuple each.
Series with the same label names share a *schema* (the tuple of name ids): the label sets
of the series of one schema are a gather of fixed-width runs, with no per-pair scatter.

Postings of a label name are made when a selection first reads that name (from the pairs
kept as integers), and kept up to date from then on. Rules and dashboards match on a few
names (the metric's, ``job``, ``namespace``); the names with the most values (``pod``,
``uid``, ``id``) would cost a list of ids per value, made one by one as series come.

Rule groups select the same series every round. A selection is kept with the number of
series ids given out when it was made; asked again, only the series added since are
tested against the matchers and appended (ids only grow). Removing series forgets every
kept selection. The index is used under its owner's lock, and so is what it keeps.
"""

from __future__ import annotations

import itertools
import sys
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from runtime.gcpause import StaysTracked
from tsdb.arrays import Column, concat_ranges, distinct, position, windows
from tsdb.labels import METRIC_NAME, Labels, Matcher, MatchType
from tsdb.strings import StringTable

IdArray = npt.NDArray[np.int32]
CodeMatrix = npt.NDArray[np.int32]

_EMPTY: IdArray = np.empty(0, dtype=np.int32)
_NO_POSTINGS: Mapping[str, array[int]] = MappingProxyType({})
# Up to this many candidates, a matcher is tested on each candidate's value; beyond it,
# on the label's postings.
_FILTER_BELOW = 100_000
# Selections mixing more schemas than this build their matrices pair by pair.
_MAX_SCHEMAS = 64
# Selections kept for the next round, and the most ids they may hold together.
_KEPT_SELECTIONS = 2048
_KEPT_IDS = 64_000_000
# Label codes kept with the selections, at most (4 bytes each).
_KEPT_CELLS = 32_000_000

_MatcherKey = tuple[tuple[str, str, str, bool], ...]
# Label sets of one set of label names: the names, their rows, their value codes.
_Group = tuple[tuple[str, ...], Sequence[int] | npt.NDArray[np.integer], CodeMatrix]


class SeriesIndex:
    """Label set ↔ id, and postings ``name → value → ids`` for selection."""

    def __init__(self) -> None:
        # Never untracked, so frozen once for good (see StaysTracked).
        self._ids: StaysTracked[Labels, int] = StaysTracked()
        self._labels: StaysTracked[int, Labels] = StaysTracked()
        self._postings: dict[str, dict[str, array[int]]] = {}
        # The names whose postings are made (see _postings_of).
        self._read_names: set[str] = set()
        # One tuple per (name, value) pair in use, which every label set holding it shares:
        # series come one by one from scrapes, and a pair tuple each cost more than the
        # rest of the index (a pod's seven labels repeat across its hundreds of series).
        self._pairs: StaysTracked[tuple[str, str], tuple[str, str]] = StaysTracked()
        self._all = Column(np.int32)
        self.next_id = 0
        self.strings = StringTable()
        self._name_ids: dict[str, int] = {}
        self._names: list[str] = []
        # Per name id, a pair row before which the name has no pairs: a name first read
        # long after it first came (ALERTS' alertname) is looked for among later pairs only.
        self._name_since: list[int] = []
        # Per name id, how many pairs of live series have it: the names in use.
        self._name_pairs: list[int] = []
        # Each series' label pairs, as name ids and value codes, from _pair_start[sid]; read
        # without the store's lock (columns that views stay valid for).
        self._pair_start = Column(np.int64, [0])
        self._pair_names = Column(np.int32)
        self._pair_values = Column(np.int32)
        self._schema_ids: dict[tuple[int, ...], int] = {}
        self._schemas: list[tuple[int, ...]] = []
        self._schema_of = Column(np.int32)
        # Matchers → (ids, how many live series there were then), least recently used first.
        self._kept: OrderedDict[_MatcherKey, tuple[IdArray, int]] = OrderedDict()
        self._kept_ids = 0
        # The label codes of kept selections (by the id of their array, which is checked):
        # a selection's series keep their labels, and rule groups read them every round.
        self._kept_codes: dict[int, tuple[IdArray, list[str], CodeMatrix]] = {}
        self._kept_cells = 0
        # Pairs of forgotten series still in the pair arrays (see :meth:`remove`).
        self._dead_pairs = 0
        # The id of a label set, if known; the label set of an id. The dicts' own methods,
        # not methods around them: a round's first evaluation looks up hundreds of
        # thousands of label sets, and a selection's answer names every series it holds.
        self.get: Callable[[Labels], int | None] = self._ids.get
        self.labels: Callable[[int], Labels] = self._labels.__getitem__

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, labels: Labels, sid: int | None = None) -> int:
        """Register a new series; ``sid`` is given when recovering from disk."""
        if sid is None:
            sid = self.next_id
        elif sid < self.next_id:
            raise ValueError(f"series id {sid} is not increasing (next is {self.next_id})")
        labels = tuple(map(self._pair, labels))
        self._ids[labels] = sid
        self._labels[sid] = labels
        self._all.extend((sid,))
        read = self._read_names
        for name, value in labels:
            if name not in read:
                continue
            values = self._postings.setdefault(name, {})
            ids = values.get(value)
            values[value] = array("i", (sid,)) if ids is None else _appended(ids, sid)
        self._add_codes(sid, labels)
        return sid

    def _pair(self, pair: tuple[str, str]) -> tuple[str, str]:
        """The shared tuple of a pair, made (of interned strings) at its first use."""
        shared = self._pairs.get(pair)
        if shared is None:
            shared = self._pairs[pair] = (sys.intern(pair[0]), sys.intern(pair[1]))
        return shared

    def add_many(
        self,
        label_sets: Sequence[Labels],
        check: Callable[[Labels], None] | None = None,
        coded: tuple[Sequence[str], CodeMatrix] | None = None,
    ) -> IdArray:
        """Register new series (distinct, none known yet) under the next ids, in order.

        ``check`` is called, before anything is registered, with one label set of each
        set of label names and metric name (:func:`~tsdb.labels.validate_labels` decides
        on those alone). What :meth:`add` does per label is done per label name and value
        here: a rule's first evaluation writes tens of thousands of series that share
        their names and most of their values.

        ``coded`` is the label sets again as ``(names, codes)``: ``codes[i, j]`` the code in
        :attr:`strings` of ``label_sets[i]``'s value of label ``names[j]`` (sorted names; 0
        where it has none; a negative code for a value ``strings`` may not know, read from
        the label set). A rule's output has them: its values are not looked up again."""
        n = len(label_sets)
        first = self.next_id
        sids = np.arange(first, first + n, dtype=np.int32)
        if not n:
            return sids
        widths = np.fromiter(map(len, label_sets), np.int64, n)
        groups = None if coded is None else self._coded_groups(label_sets, widths, *coded)
        if groups is None:
            groups = self._tuple_groups(label_sets)
        if check is not None:
            for names, rows, codes in groups:
                _check_metrics(check, names, label_sets, rows, codes)
        ends = np.cumsum(widths)
        pair_names = np.empty(int(ends[-1]), np.int32)
        pair_values = np.empty(int(ends[-1]), np.int32)
        schema_of = np.empty(n, np.int32)
        for names, rows, codes in groups:
            name_ids = [self._name_id(name) for name in names]
            schema_of[rows] = self._schema_id(tuple(name_ids))
            at = (ends - widths)[rows][:, None] + np.arange(len(names))
            pair_names[at] = name_ids
            pair_values[at] = codes
        self._count_pairs(pair_names, 1)
        made = sids.tolist()
        self._ids.update(zip(label_sets, made, strict=True))
        self._labels.update(zip(made, label_sets, strict=True))
        self._all.extend(sids)
        self._add_postings(pair_names, pair_values, np.repeat(sids, widths))
        self._pair_names.extend(pair_names)
        self._pair_values.extend(pair_values)
        self._pair_start.extend(ends + self._pair_start.last())
        self._schema_of.extend(schema_of)
        self.next_id = first + n
        return sids

    def _tuple_groups(self, label_sets: Sequence[Labels]) -> list[_Group]:
        """Label sets by their label names: the names, the rows, their value codes."""
        by_schema: dict[tuple[str, ...], list[int]] = {}
        name_of = itemgetter(0)
        for i, labels in enumerate(label_sets):
            by_schema.setdefault(tuple(map(name_of, labels)), []).append(i)
        groups: list[_Group] = []
        for names, rows in by_schema.items():
            group = [label_sets[i] for i in rows]
            # Every value of the group in one pass, row after row.
            flat = list(map(itemgetter(1), chain.from_iterable(group)))
            codes = self.strings.codes(flat).reshape(len(rows), len(names))
            groups.append((names, rows, codes))
        return groups

    def _coded_groups(
        self,
        label_sets: Sequence[Labels],
        widths: npt.NDArray[np.int64],
        names: Sequence[str],
        codes: CodeMatrix,
    ) -> list[_Group] | None:
        """:meth:`_tuple_groups` from the codes of the label sets (see :meth:`add_many`):
        rows lacking the same labels are one group. None if the codes do not hold as many
        labels as the sets (a set with an empty value, which has no code)."""
        codes = self._known_codes(label_sets, names, codes)
        present = codes != 0
        if not np.array_equal(present.sum(axis=1), widths):
            return None
        if present.all():
            return [(tuple(names), np.arange(len(codes)), codes)]
        patterns, which = np.unique(present, axis=0, return_inverse=True)
        which = which.reshape(-1)
        groups: list[_Group] = []
        for p, pattern in enumerate(patterns):
            rows = np.flatnonzero(which == p)
            cols = np.flatnonzero(pattern)
            group_names = tuple(names[j] for j in cols.tolist())
            groups.append((group_names, rows, codes[rows[:, None], cols]))
        return groups

    def _known_codes(
        self, label_sets: Sequence[Labels], names: Sequence[str], codes: CodeMatrix
    ) -> CodeMatrix:
        """``codes`` with each negative code replaced by the code in :attr:`strings` of the
        value it stands for, read from the first label set that has it."""
        if not codes.size or int(codes.min()) >= 0:
            return codes
        where = codes < 0
        made_up, first = np.unique(codes[where], return_index=True)
        rows, cols = np.nonzero(where)
        values = [
            dict(label_sets[r])[names[c]]
            for r, c in zip(rows[first].tolist(), cols[first].tolist(), strict=True)
        ]
        known = self.strings.codes(values)
        out = codes.copy()
        out[where] = known[np.searchsorted(made_up, codes[where])]
        return out

    def _add_postings(self, names: IdArray, values: IdArray, sids: IdArray) -> None:
        """Append the ids (ascending, all above any listed) to the postings of their pairs,
        for the names whose postings are made."""
        read = [self._name_ids[name] for name in self._read_names if name in self._name_ids]
        if len(read) < len(self._names):
            kept = np.isin(names, read)
            names, values, sids = names[kept], values[kept], sids[kept]
        # One key per pair (name and value codes are not negative); a stable sort keeps
        # each pair's ids ascending.
        if not len(names):
            return  # label sets without labels: no pairs
        key = (names.astype(np.int64) << 32) | values.astype(np.int64)
        order = np.argsort(key, kind="stable")
        key, sids = key[order], sids[order]
        new = np.ones(len(key), dtype=bool)
        new[1:] = key[1:] != key[:-1]
        firsts = np.flatnonzero(new)
        # Each pair's ids as a slice of one buffer: no numpy slice and no conversion per
        # pair (a round's first ALERTS are tens of thousands of pairs of a few ids each).
        raw = sids.astype(np.int32, copy=False).tobytes()
        bounds = (np.append(firsts, len(key)) * 4).tolist()
        first_keys = key[firsts]
        texts = self.strings.values()[first_keys & 0xFFFFFFFF].tolist()
        # The pairs of one name lie side by side: one map of postings for each run.
        name_at = first_keys >> 32
        cuts = [0, *(np.flatnonzero(name_at[1:] != name_at[:-1]) + 1).tolist(), len(firsts)]
        for lo, hi in itertools.pairwise(cuts):
            postings = self._postings.setdefault(self._names[int(name_at[lo])], {})
            get = postings.get
            ends = bounds[lo + 1 : hi + 1]
            for text, a, b in zip(texts[lo:hi], bounds[lo:hi], ends, strict=True):
                ids = get(text)
                if ids is None:
                    postings[text] = array("i", raw[a:b])
                    continue
                try:
                    ids.frombytes(raw[a:b])
                except BufferError:
                    # A view still pins the buffer (see :func:`_grown`): extend a copy.
                    postings[text] = _extended(ids, sids[a // 4 : b // 4])

    def _postings_of(self, name: str) -> Mapping[str, array[int]]:
        """The postings of a label name's values, made from the pairs of the live series
        when the name is first read."""
        if name not in self._read_names:
            self._read_names.add(name)
            name_id = self._name_ids.get(name)
            if name_id is not None:
                since = self._name_since[name_id]
                rows = np.flatnonzero(self._pair_names.view()[since:] == name_id) + since
                # Each pair's series: the last whose pairs start at or before it.
                found = np.searchsorted(self._pair_start.view(), rows, side="right") - 1
                owners: IdArray = found.astype(np.int32)
                if self._dead_pairs:
                    live = self._live()[owners]
                    rows, owners = rows[live], owners[live]
                names = np.full(len(rows), name_id, dtype=np.int32)
                self._add_postings(names, self._pair_values.view()[rows], owners)
        return self._postings.get(name, _NO_POSTINGS)

    def _live(self) -> npt.NDArray[np.bool_]:
        """Per id, whether the series is known (forgotten ones keep their pairs a while)."""
        live = np.zeros(self.next_id, dtype=bool)
        live[self._all.view()] = True
        return live

    def _name_id(self, name: str) -> int:
        name_id = self._name_ids.get(name)
        if name_id is None:
            name_id = self._name_ids[name] = len(self._names)
            self._names.append(sys.intern(name))
            self._name_since.append(len(self._pair_names))
            self._name_pairs.append(0)
        return name_id

    def _schema_id(self, schema: tuple[int, ...]) -> int:
        schema_id = self._schema_ids.get(schema)
        if schema_id is None:
            schema_id = self._schema_ids[schema] = len(self._schemas)
            self._schemas.append(schema)
        return schema_id

    def _add_codes(self, sid: int, labels: Labels) -> None:
        # Ids skipped (on recovery) or removed own no pairs.
        end = len(self._pair_names)
        while self.next_id < sid:
            self._pair_start.extend((end,))
            self._schema_of.extend((-1,))
            self.next_id += 1
        code = self.strings.code
        schema = []
        pair_values = []
        for name, value in labels:
            schema.append(self._name_id(name))
            pair_values.append(code(value))
        self._pair_names.extend(schema)
        self._pair_values.extend(pair_values)
        self._pair_start.extend((len(self._pair_names),))
        counts = self._name_pairs
        for name_id in schema:
            counts[name_id] += 1
        schema_id = self._schema_id(tuple(schema))
        self._schema_of.extend((schema_id,))
        self.next_id = sid + 1

    def remove(self, sids: Iterable[int]) -> None:
        """Forget series (their data is gone).

        Each one leaves the postings of its own pairs only, so the cost follows the series
        forgotten rather than the whole index: the store does this under the lock its
        appends wait for, and rebuilding a million series' postings took seconds."""
        gone = sorted({sid for sid in sids if sid in self._labels})
        if not gone:
            return
        by_pair: dict[tuple[str, str], list[int]] = {}
        for sid in gone:
            labels = self._labels.pop(sid)
            del self._ids[labels]
            for pair in labels:
                by_pair.setdefault(pair, []).append(sid)
        for (name, value), dead in by_pair.items():
            if name not in self._read_names:
                # No postings to leave. The shared pair goes: were the value still held, a
                # new series holding it makes its own.
                self._pairs.pop((name, value), None)
                continue
            values = self._postings[name]
            left = _without(values[value], dead)
            if left:
                values[value] = left
            else:
                del values[value]
                self._pairs.pop((name, value), None)
                if not values:
                    del self._postings[name]
        self._all = Column(np.int32, _dropped(self._all.view(), gone))
        self._kept.clear()
        self._kept_ids = 0
        self._kept_codes.clear()
        self._kept_cells = 0
        # A forgotten series' pairs stay where they were (its id is never reused) until
        # they are a quarter of all.
        starts = self._pair_start.view()
        ids = np.array(gone, dtype=np.int64)
        self._dead_pairs += int((starts[ids + 1] - starts[ids]).sum())
        self._count_pairs(self._pair_names.view()[concat_ranges(starts[ids], starts[ids + 1])], -1)
        if self._dead_pairs * 4 > len(self._pair_names):
            self._compact_pairs()

    def _compact_pairs(self) -> None:
        """Drop the pairs of forgotten series; their ids own none and have no schema."""
        starts = self._pair_start.view()
        live = self._live()
        rows = concat_ranges(starts[:-1][live], starts[1:][live])
        widths = np.where(live, np.diff(starts), 0)
        self._pair_start = Column(np.int64, np.concatenate(([0], np.cumsum(widths))))
        self._pair_names = Column(np.int32, self._pair_names.view()[rows])
        self._pair_values = Column(np.int32, self._pair_values.view()[rows])
        self._schema_of = Column(np.int32, np.where(live, self._schema_of.view(), -1))
        self._dead_pairs = 0
        self._name_since = [0] * len(self._names)

    def all_ids(self) -> IdArray:
        """Every live series id, sorted."""
        ids: IdArray = self._all.view()
        return ids

    def items(self) -> Iterable[tuple[int, Labels]]:
        """(id, labels) of every series, by id."""
        return sorted(self._labels.items())

    def holds_none_of(
        self, label_sets: Sequence[Labels], names: Sequence[str], codes: CodeMatrix
    ) -> bool:
        """Whether no series has the metric name of any of the label sets, given also as
        codes (as :meth:`add_many` takes them): then none of them is known. False when the
        codes hold no metric name."""
        if METRIC_NAME not in names or not len(codes):
            return False
        metrics, first = np.unique(codes[:, list(names).index(METRIC_NAME)], return_index=True)
        if not metrics.all():
            return False
        held = self._postings_of(METRIC_NAME)
        for code, row in zip(metrics.tolist(), first.tolist(), strict=True):
            # A negative code: a name the strings did not know when it was coded.
            name = self.strings.value(code) if code > 0 else dict(label_sets[row])[METRIC_NAME]
            if name in held:
                return False
        return True

    def label_names(self) -> list[str]:
        """Every label name in use, sorted."""
        return sorted(name for name, n in zip(self._names, self._name_pairs, strict=True) if n)

    def _count_pairs(self, name_ids: IdArray, sign: int) -> None:
        """Add (or take back) pairs of these name ids to the counts of names in use."""
        counts = self._name_pairs
        for name_id, n in enumerate(np.bincount(name_ids, minlength=len(counts)).tolist()):
            if n:
                counts[name_id] += sign * n

    def label_values(self, name: str) -> list[str]:
        """Every value of a label name, sorted."""
        return sorted(self._postings_of(name))

    def select(self, matchers: Sequence[Matcher]) -> IdArray:
        """Ids of the series matching every matcher, sorted (read-only).

        As in Prometheus, a matcher that matches the empty string also matches series that
        lack the label.
        """
        key = tuple(sorted((m.type.value, m.name, m.value, m.DOT_NL) for m in matchers))
        kept = self._kept.get(key)
        live = len(self._all)
        if kept is not None:
            ids, then = kept
            if then < live:
                # Series added since: ids above every kept one, tested on their own labels.
                added = self._filter(self._added(matchers, then), matchers)
                ids = np.concatenate((ids, added)) if len(added) else ids
                self._keep(key, ids, live)
            else:
                self._kept.move_to_end(key)
            return ids
        ids = self._select(matchers)
        self._keep(key, ids, live)
        return ids

    def _added(self, matchers: Sequence[Matcher], then: int) -> IdArray:
        """Candidates among the series added after the first ``then``: those an equality
        matcher's postings hold (a round adds many series, few of one metric), else all."""
        first = int(self._all.view()[then])
        best: IdArray | None = None
        for m in matchers:
            if m.type is MatchType.EQUAL and m.value != "":
                ids = _view(self._postings_of(m.name).get(m.value, array("i")))
                tail = ids[position(ids, first) :]
                if best is None or len(tail) < len(best):
                    best = tail
        if best is None:
            best = self._all.view()[then:]
        return best.copy()

    def _keep(self, key: _MatcherKey, ids: IdArray, live: int) -> None:
        ids.flags.writeable = False
        old = self._kept.pop(key, None)
        if old is not None:
            self._kept_ids -= len(old[0])
            if old[0] is not ids:
                self._forget_codes(old[0])
        self._kept[key] = (ids, live)
        self._kept_ids += len(ids)
        while len(self._kept) > _KEPT_SELECTIONS or self._kept_ids > _KEPT_IDS:
            _, (gone, _) = self._kept.popitem(last=False)
            self._kept_ids -= len(gone)
            self._forget_codes(gone)

    def _forget_codes(self, ids: IdArray) -> None:
        kept = self._kept_codes.get(id(ids))
        if kept is not None and kept[0] is ids:
            del self._kept_codes[id(ids)]
            self._kept_cells -= kept[2].size

    def _select(self, matchers: Sequence[Matcher]) -> IdArray:
        result: IdArray | None = None
        ordered = sorted(matchers, key=self._cost)
        for i, m in enumerate(ordered):
            if result is None:
                result = self._matching(m)
            elif self._filters(result, m):
                # Few candidates left (and fewer with every matcher): test their own values
                # for this matcher and the rest, reading where their labels are once.
                return self._filter(result, ordered[i:])
            elif m.type is MatchType.EQUAL and m.value != "":
                ids = self._postings_of(m.name).get(m.value)
                result = _intersect(result, _view(ids)) if ids else _EMPTY
            else:
                result = _intersect(result, self._matching(m))
            if not len(result):
                return _EMPTY
        return self.all_ids() if result is None else result

    def _cost(self, m: Matcher) -> tuple[int, int]:
        """Order of evaluation: short equality postings first, then other matchers that
        need the label, then those that also match series without it."""
        if m.type is MatchType.EQUAL and m.value != "":
            return 0, len(self._postings_of(m.name).get(m.value, ()))
        return (2, 0) if m.matches("") else (1, 0)

    def _filters(self, candidates: IdArray, m: Matcher) -> bool:
        """Whether testing each candidate's value costs less than reading the postings:
        few candidates, or far fewer than the postings an equality reads or than the
        series another matcher's postings may cover."""
        n = len(candidates)
        if n <= _FILTER_BELOW:
            return True
        if m.type is MatchType.EQUAL and m.value != "":
            return n * 4 < len(self._postings_of(m.name).get(m.value, ()))
        return n * 8 < len(self._all)

    def _filter(self, sids: IdArray, matchers: Sequence[Matcher]) -> IdArray:
        layout = self._layout(sids)
        keep = np.ones(len(sids), dtype=bool)
        for m in matchers:
            name = self._name_ids.get(m.name)
            if name is None:
                if not m.matches(""):
                    return _EMPTY
                continue
            codes = self._column(sids, name, layout)
            if m.type in (MatchType.EQUAL, MatchType.NOT_EQUAL):
                code = self.strings.find(m.value)
                hit = codes == code if code is not None else np.zeros(len(codes), dtype=bool)
                keep &= hit if m.type is MatchType.EQUAL else ~hit
                continue
            found = distinct(codes)
            values = self.strings.values()
            ok = np.array([m.matches(values[c]) for c in found.tolist()], dtype=bool)
            keep &= ok[np.searchsorted(found, codes)]
        kept: IdArray = sids[keep]
        return kept

    def _layout(self, sids: IdArray) -> tuple[IdArray, list[int] | None, npt.NDArray[np.int64]]:
        """Where the labels of these series are: their schemas, the few schemas among them
        (see :meth:`_kinds`), and where each one's pairs start."""
        schema, kinds = self._kinds(sids)
        return schema, kinds, self._pair_start.view()[sids]

    def _column(
        self,
        sids: IdArray,
        name: int,
        layout: tuple[IdArray, list[int] | None, npt.NDArray[np.int64]],
    ) -> IdArray:
        """The value code of label ``name`` of each series (0 where absent)."""
        schema, kinds, start = layout
        values = self._pair_values.view()
        if kinds is not None:
            out = np.zeros(len(sids), dtype=np.int32)
            for k in kinds:
                ids = self._schemas[k]
                if name not in ids:
                    continue
                at = ids.index(name)
                if len(kinds) == 1:
                    out = values[start + at]
                else:
                    rows = schema == k
                    out[rows] = values[start[rows] + at]
            return out
        hi = self._pair_start.view()[sids.astype(np.int64) + 1]
        rows = concat_ranges(start, hi)
        owner = np.repeat(np.arange(len(sids)), hi - start)
        hit = self._pair_names.view()[rows] == name
        out = np.zeros(len(sids), dtype=np.int32)
        out[owner[hit]] = values[rows[hit]]
        return out

    def label_codes(self, sids: IdArray) -> tuple[list[str], CodeMatrix]:
        """The label sets of series as a matrix of :attr:`strings` codes: one row per series,
        one column per label name (sorted); 0 where a series lacks the label. The matrix
        of a kept selection (the very array :meth:`select` gave) is kept with it, read-only.
        """
        kept = self._kept_codes.get(id(sids))
        if kept is not None and kept[0] is sids:
            return list(kept[1]), kept[2]
        schema, kinds = self._kinds(sids)
        if kinds is not None and len(sids):
            names, matrix = self._gather_codes(sids, schema, kinds)
        else:
            names, matrix = self._scatter_codes(sids)
        if self._kept_cells + matrix.size <= _KEPT_CELLS and self._is_kept(sids):
            matrix.flags.writeable = False
            self._kept_codes[id(sids)] = (sids, list(names), matrix)
            self._kept_cells += matrix.size
        return names, matrix

    def _is_kept(self, sids: IdArray) -> bool:
        """Whether ``sids`` is the array of a kept selection (a read-only array, as
        :meth:`select` gives, and among the few kept ones)."""
        if sids.flags.writeable or not len(sids):
            return False
        return any(ids is sids for ids, _ in self._kept.values())

    def _kinds(self, sids: IdArray) -> tuple[IdArray, list[int] | None]:
        """Each series' schema, and the few schemas among them (None: too many to treat
        one by one, or a removed id)."""
        schema: IdArray = self._schema_of.view()[sids]
        if not len(schema):
            return schema, []
        low, high = int(schema.min()), int(schema.max())
        if low < 0:
            return schema, None
        if low == high:
            return schema, [low]
        kinds = distinct(schema)
        return schema, kinds.tolist() if len(kinds) <= _MAX_SCHEMAS else None

    def _gather_codes(
        self, sids: IdArray, schema: IdArray, kinds: list[int]
    ) -> tuple[list[str], CodeMatrix]:
        start = self._pair_start.view()[sids]
        values = self._pair_values.view()
        if len(kinds) == 1:
            ids = self._schemas[kinds[0]]
            names = [self._names[i] for i in ids]
            matrix: CodeMatrix = _runs(values, start, len(ids))
            if names != sorted(names):
                order = sorted(range(len(names)), key=names.__getitem__)
                names, matrix = [names[j] for j in order], matrix[:, order]
            return names, matrix
        names = sorted({self._names[i] for k in kinds for i in self._schemas[k]})
        column = {name: j for j, name in enumerate(names)}
        matrix = np.zeros((len(sids), len(names)), dtype=np.int32)
        for k in kinds:
            ids = self._schemas[k]
            rows = np.flatnonzero(schema == k)
            cols = np.array([column[self._names[i]] for i in ids], dtype=np.int64)
            matrix[rows[:, None], cols] = _runs(values, start[rows], len(ids))
        return names, matrix

    def _scatter_codes(self, sids: IdArray) -> tuple[list[str], CodeMatrix]:
        n = len(sids)
        start = self._pair_start.view()
        lo, hi = start[sids], start[sids.astype(np.int64) + 1]
        rows = concat_ranges(lo, hi)
        name_ids = self._pair_names.view()[rows]
        used = np.flatnonzero(np.bincount(name_ids, minlength=len(self._names)))
        names = sorted(self._names[i] for i in used.tolist())
        column_of = np.full(len(self._names), -1, dtype=np.int64)
        column_of[[self._name_ids[name] for name in names]] = np.arange(len(names))
        matrix = np.zeros((n, len(names)), dtype=np.int32)
        owner = np.repeat(np.arange(n), hi - lo)
        matrix[owner, column_of[name_ids]] = self._pair_values.view()[rows]
        return names, matrix

    def _matching(self, m: Matcher) -> IdArray:
        values = self._postings_of(m.name)
        if m.type is MatchType.EQUAL and m.value != "":
            ids = values.get(m.value)
            return _as_ids(ids) if ids else _EMPTY
        if not m.matches(""):
            return self._union([ids for v, ids in values.items() if m.matches(v)])
        # Series without the label match too: all minus those whose value does not match.
        misses = [ids for v, ids in values.items() if not m.matches(v)]
        if not misses:
            return self.all_ids()
        keep = np.zeros(self.next_id, dtype=bool)
        keep[self._all.view()] = True
        for ids in misses:
            keep[_view(ids)] = False
        return np.flatnonzero(keep).astype(np.int32)

    def _union(self, postings: list[array[int]]) -> IdArray:
        if not postings:
            return _EMPTY
        if len(postings) == 1:
            return _as_ids(postings[0])
        # Ids are dense, so marking them costs less than sorting or hashing the lists.
        hit = np.zeros(self.next_id, dtype=bool)
        for ids in postings:
            hit[_view(ids)] = True
        return np.flatnonzero(hit).astype(np.int32)


def _runs(values: IdArray, starts: npt.NDArray[np.int64], width: int) -> CodeMatrix:
    """``values[starts[i] : starts[i] + width]`` as row ``i``: a gather of whole rows of a
    sliding-window view, twice as fast as an index matrix."""
    if not width:
        return np.zeros((len(starts), 0), dtype=np.int32)
    rows: CodeMatrix = windows(values, width)[starts]
    return rows


def _intersect(small: IdArray, big: IdArray) -> IdArray:
    """Ids in both sorted arrays: a binary search of the shorter in the longer."""
    if len(small) > len(big):
        small, big = big, small
    if not len(small):
        return _EMPTY
    pos = np.minimum(np.searchsorted(big, small), len(big) - 1)
    both: IdArray = small[big[pos] == small]
    return both


def _as_ids(ids: array[int]) -> IdArray:
    # A copy: a numpy view would pin the array's buffer and make the next append fail.
    return np.frombuffer(ids, dtype=np.int32).copy() if len(ids) else _EMPTY


def _appended(ids: array[int], *values: int) -> array[int]:
    """``ids`` with ``values`` appended (see :func:`_grown`)."""
    return _grown(ids, lambda target: target.extend(values))


def _check_metrics(
    check: Callable[[Labels], None],
    names: tuple[str, ...],
    label_sets: Sequence[Labels],
    rows: Sequence[int] | npt.NDArray[np.integer],
    codes: CodeMatrix,
) -> None:
    """``check`` one label set of each metric name among the label sets ``rows`` of
    ``label_sets``, of the same names (their value codes: ``codes``)."""
    if METRIC_NAME not in names:
        check(label_sets[int(rows[0])])
        return
    column = codes[:, names.index(METRIC_NAME)]
    for row in np.unique(column, return_index=True)[1].tolist():
        check(label_sets[int(rows[row])])


def _extended(ids: array[int], more: IdArray) -> array[int]:
    """Postings ``ids`` with a whole numpy array of ids appended (see :func:`_grown`)."""
    data = more.astype(np.int32, copy=False).tobytes()
    return _grown(ids, lambda target: target.frombytes(data))


def _grown(ids: array[Any], add: Callable[[array[Any]], None]) -> array[Any]:
    """``ids`` after ``add``: in place, or in a copy while a numpy view still pins its
    buffer (a view that outlived its read sees the ids it was taken with). Without the copy
    the append raises ``BufferError`` half-way through :meth:`SeriesIndex.add`."""
    try:
        add(ids)
    except BufferError:
        ids = array(ids.typecode, ids)
        add(ids)
    return ids


def _without(ids: array[int], dead: list[int]) -> array[int]:
    """A new array of ``ids`` (sorted) without ``dead`` (sorted, all among them)."""
    if len(dead) == len(ids):
        return array("i")
    held = np.frombuffer(ids, dtype=np.int32)
    left = array("i", _dropped(held, dead).tobytes())
    del held
    return left


def _dropped(held: IdArray, dead: list[int]) -> IdArray:
    """``held`` (sorted) without ``dead`` (sorted, all among them)."""
    drop = np.array(dead, dtype=np.int32)
    at = np.minimum(np.searchsorted(drop, held), len(drop) - 1)
    kept: IdArray = held[drop[at] != held]
    return kept


def _view(ids: array[int]) -> IdArray:
    """A view for immediate use only (see :func:`_as_ids`); dropped before any append."""
    return np.frombuffer(ids, dtype=np.int32) if len(ids) else _EMPTY
