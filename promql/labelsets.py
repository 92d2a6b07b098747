"""The label sets of many series as one integer matrix.

Grouping, vector matching and label rewriting run once per query over thousands of series;
as tuples of string pairs each of them costs a Python loop per series. Here a label set is
a row of codes (one column per label name, 0 where the series lacks the label), so
projecting is picking columns and grouping is one hash and one sort of integers. Tuples are
made only for the series a query returns.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from tsdb.labels import METRIC_NAME, Labels
from tsdb.strings import StringTable

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
Objects = npt.NDArray[np.object_]

_MIX = np.uint64(0x9E3779B97F4A7C15)
_SALT = np.uint64(0xBF58476D1CE4E5B9)


class Strings:
    """Codes of label values within one query.

    Values the store knew when the query started keep the store's codes, so selected
    series need no translation; values the query makes up (``label_replace``,
    ``count_values``...) get negative codes of their own. Every value has one code.
    """

    def __init__(self, base: StringTable | None = None) -> None:
        self.base = base if base is not None else StringTable()
        # Store codes beyond this were given after the query started: they are
        # translated, since the query may already have a code of its own for the value.
        self._limit = len(self.base)
        self._local: dict[str, int] = {}
        self._local_values: list[str] = []

    def code(self, value: str) -> int:
        """The code of ``value`` (made up if the store does not know it)."""
        code = self.base.find(value)
        if code is not None and code < self._limit:
            return code
        local = self._local.get(value)
        if local is None:
            self._local_values.append(value)
            local = -len(self._local_values)
            self._local[value] = local
        return local

    def codes(self, values: Iterable[str]) -> I32:
        """:meth:`code` of each value."""
        return np.array([self.code(v) for v in values], dtype=np.int32)

    def value(self, code: int) -> str:
        """The string of a code."""
        return self._local_values[-code - 1] if code < 0 else self.base.value(code)

    def decode(self, codes: I32) -> Objects:
        """The strings of an array of codes, as an object array of the same shape."""
        base = self.base.values()
        if not codes.size or int(codes.min()) >= 0:
            decoded: Objects = base[codes]
            return decoded
        out: Objects = np.empty(codes.shape, dtype=object)
        negative = codes < 0
        out[~negative] = base[codes[~negative]]
        local = np.array(self._local_values, dtype=object)
        out[negative] = local[-codes[negative] - 1]
        return out

    def stable_rows(self, codes: I32) -> npt.NDArray[np.bool_]:
        """Rows of ``codes`` made only of store codes: those mean the same strings in every
        query over the same store (made-up codes are numbered per query)."""
        stable: npt.NDArray[np.bool_] = np.asarray((codes >= 0).all(axis=1))
        return stable

    def rebased(self, codes: I32) -> I32:
        """``codes`` with each made-up code replaced by the store's code of the same string
        where the store has one by now (a writer added it after the query started)."""
        if not codes.size or int(codes.min()) >= 0:
            return codes
        made_up = np.unique(codes[codes < 0])
        stored = [self.base.find(self.value(c)) for c in made_up.tolist()]
        mapped = np.array(
            [c if s is None else s for c, s in zip(made_up.tolist(), stored, strict=True)],
            dtype=np.int32,
        )
        out = codes.copy()
        where = codes < 0
        out[where] = mapped[np.searchsorted(made_up, codes[where])]
        return out

    def adopt(self, codes: I32) -> I32:
        """Codes handed out by the store, made valid for this query."""
        # Read after the codes were given: no string added since the query began, no code
        # to translate (and no pass over the codes).
        if len(self.base) <= self._limit or not codes.size or int(codes.max()) < self._limit:
            return codes
        late = np.unique(codes[codes >= self._limit])
        mapped = self.codes(self.base.value(c) for c in late.tolist())
        out = codes.copy()
        where = codes >= self._limit
        out[where] = mapped[np.searchsorted(late, codes[where])]
        return out


class LabelTable:
    """Label sets of ``n`` series: ``codes[i, j]`` is series ``i``'s value of label
    ``names[j]`` (0: absent); names are sorted and unique.

    ``unique`` is a promise that no two rows are equal (selected series, group keys), so
    checks for duplicates can be skipped; False means only "not known".
    """

    __slots__ = ("_keys", "_tuples", "codes", "names", "strings", "unique")

    def __init__(
        self,
        names: Sequence[str],
        codes: I32,
        strings: Strings,
        tuples: list[Labels] | None = None,
        unique: bool = False,
    ) -> None:
        self.names = tuple(names)
        self.codes = codes
        self.strings = strings
        self._tuples = tuples
        self.unique = unique
        self._keys: dict[tuple[str, ...], SignatureKeys] = {}

    def distinct(self) -> LabelTable:
        """The same rows, known to be all different."""
        return LabelTable(self.names, self.codes, self.strings, self._tuples, unique=True)

    @classmethod
    def from_tuples(cls, labels: Sequence[Labels], strings: Strings | None = None) -> LabelTable:
        """A table from label tuples."""
        strings = strings if strings is not None else Strings()
        names = sorted({k for lb in labels for k, _ in lb})
        column = {name: j for j, name in enumerate(names)}
        codes = np.zeros((len(labels), len(names)), dtype=np.int32)
        code = strings.code
        for i, lb in enumerate(labels):
            row = codes[i]
            for k, v in lb:
                row[column[k]] = code(v)
        return cls(names, codes, strings, list(labels))

    @classmethod
    def empty(cls, strings: Strings | None = None) -> LabelTable:
        """No series."""
        return cls((), np.zeros((0, 0), dtype=np.int32), strings or Strings(), [])

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    # ------------------------------------------------------------------ reading

    def tuples(self) -> list[Labels]:
        """Every label set as a tuple of ``(name, value)`` pairs, sorted by name."""
        if self._tuples is None:
            self._tuples = self._make_tuples()
        return self._tuples

    def _make_tuples(self) -> list[Labels]:
        n, k = self.codes.shape
        if not k:
            return [()] * n
        pairs = [self._pairs(j) for j in range(k)]
        present = self.codes != 0
        if present.all():
            return list(zip(*(column.tolist() for column in pairs), strict=True))
        # Rows that lack some labels: one pass per pattern of present labels, each column's
        # pairs of those rows taken by one gather.
        _, pattern = factorize(present.astype(np.int32))
        out: list[Labels] = [()] * n
        for p in np.unique(pattern).tolist():
            rows = np.flatnonzero(pattern == p)
            cols = np.flatnonzero(present[rows[0]]).tolist()
            if not cols:
                continue
            chosen = [pairs[j][rows].tolist() for j in cols]
            for i, lb in zip(rows.tolist(), zip(*chosen, strict=True), strict=True):
                out[i] = lb
        return out

    def _pairs(self, j: int) -> Objects:
        """Each row's ``(name, value)`` pair of column ``j``; rows with the same value share
        one pair. A round's first evaluation names hundreds of thousands of new series, most
        of whose labels take a few values (namespace, job, the metric's name): one tuple per
        value rather than per row is less to make, and less to keep in the index."""
        name, column = self.names[j], self.codes[:, j]
        n = len(column)
        if n < 2:
            single: Objects = np.empty(n, dtype=object)
            for i, v in enumerate(self.strings.decode(column).tolist()):
                single[i] = (name, v)
            return single
        lo, hi = int(column.min()), int(column.max())
        if hi - lo < 4 * n:
            # Codes are dense: a table over their range instead of a sort.
            seen = np.zeros(hi - lo + 1, dtype=bool)
            at: npt.NDArray[np.integer] = column - lo
            seen[at] = True
            slots = np.flatnonzero(seen)
            codes = slots + lo
        else:
            codes, inverse = np.unique(column, return_inverse=True)
            at = inverse.reshape(-1)
            slots = np.arange(len(codes))
        table: Objects = np.empty(int(slots[-1]) + 1, dtype=object)
        values = self.strings.decode(codes.astype(np.int32, copy=False)).tolist()
        for slot, v in zip(slots.tolist(), values, strict=True):
            table[slot] = (name, v)
        made: Objects = table[at]
        return made

    def column(self, name: str) -> I32:
        """Codes of one label's value (0 where absent)."""
        try:
            j = self.names.index(name)
        except ValueError:
            return np.zeros(len(self), dtype=np.int32)
        col: I32 = self.codes[:, j]
        return col

    def signature_keys(self, names: tuple[str, ...]) -> SignatureKeys:
        """The rows' values of the labels ``names`` (absent ones empty) as hashes, made
        once per table: the values a round of queries shares are joined with many others
        on the same labels."""
        keys = self._keys.get(names)
        if keys is None:
            keys = SignatureKeys(self, names)
            self._keys[names] = keys
        return keys

    # ------------------------------------------------------------------ new tables

    def take(self, rows: npt.ArrayLike) -> LabelTable:
        """Some rows, by index or boolean mask."""
        idx = np.asarray(rows)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        tuples = self._tuples
        picked = None if tuples is None else [tuples[i] for i in idx.tolist()]
        # Rows of a distinct table stay distinct unless one is taken twice.
        unique = self.unique and bool(np.all(idx[1:] > idx[:-1]))
        return LabelTable(self.names, self.codes[idx], self.strings, picked, unique)

    def keep(self, names: Collection[str]) -> LabelTable:
        """Only the labels in ``names``."""
        wanted = set(names)
        cols = [j for j, name in enumerate(self.names) if name in wanted]
        return self._columns(cols)

    def drop(self, names: Collection[str]) -> LabelTable:
        """Without the labels in ``names``."""
        unwanted = set(names)
        cols = [j for j, name in enumerate(self.names) if name not in unwanted]
        if len(cols) == len(self.names):
            return self
        return self._columns(cols)

    def _columns(self, cols: list[int]) -> LabelTable:
        return LabelTable(
            [self.names[j] for j in cols], np.ascontiguousarray(self.codes[:, cols]), self.strings
        )

    def with_columns(self, names: Sequence[str], codes: I32) -> LabelTable:
        """Labels ``names`` set to the columns of ``codes`` (0 removes one) in every row."""
        merged = sorted({*self.names, *names})
        at = {name: j for j, name in enumerate(merged)}
        out = np.zeros((len(self), len(merged)), dtype=np.int32)
        out[:, [at[name] for name in self.names]] = self.codes
        out[:, [at[name] for name in names]] = codes
        return LabelTable(merged, out, self.strings)

    def with_column(self, name: str, codes: I32) -> LabelTable:
        """``name`` set to ``codes`` (0 removes it) in every row."""
        if name in self.names:
            out = self.codes.copy()
            out[:, self.names.index(name)] = codes
            return LabelTable(self.names, out, self.strings)
        names = sorted([*self.names, name])
        out = np.insert(self.codes, names.index(name), codes, axis=1)
        return LabelTable(names, out.astype(np.int32, copy=False), self.strings)

    def without_name(self, rows: npt.NDArray[np.bool_]) -> LabelTable:
        """``__name__`` removed from the chosen rows."""
        if METRIC_NAME not in self.names or not rows.any():
            return self
        out = self.codes.copy()
        out[rows, self.names.index(METRIC_NAME)] = 0
        return LabelTable(self.names, out, self.strings)

    def rebound(self, strings: Strings) -> LabelTable:
        """The same table in another query over the same store; every code must be the
        store's (none made up), so that it means the same string there."""
        table = LabelTable(self.names, self.codes, strings, self._tuples, self.unique)
        table._keys = self._keys
        return table

    def in_strings(self, strings: Strings) -> LabelTable:
        """The same table with codes of another :class:`Strings`."""
        if strings is self.strings:
            return self
        distinct, inverse = np.unique(self.codes, return_inverse=True)
        mapped = strings.codes(self.strings.value(c) if c else "" for c in distinct.tolist())
        codes = mapped[inverse.reshape(self.codes.shape)].astype(np.int32)
        return LabelTable(self.names, codes, strings, self._tuples, self.unique)

    def aligned(self, names: Sequence[str]) -> I32:
        """Codes with exactly the columns ``names`` (a superset of :attr:`names`)."""
        if tuple(names) == self.names:
            return self.codes
        out = np.zeros((len(self), len(names)), dtype=np.int32)
        if self.names:
            out[:, np.searchsorted(np.array(names), np.array(self.names))] = self.codes
        return out

    # ------------------------------------------------------------------ grouping

    def factorize(self) -> tuple[I64, I64]:
        """Equal label sets as groups: the first row of each group (groups in order of
        first appearance) and each row's group."""
        return factorize(self.codes)


# From this many rows on, rows looked up in a table's keys are sorted first (SignatureKeys.find).
_SORTED_LOOKUPS_FROM = 4096


class SignatureKeys:
    """A table's rows' values of some labels, each row's as one 64-bit hash (equal values,
    equal hashes; different values almost never)."""

    __slots__ = ("_distinct", "_sorted", "codes", "hashes")

    def __init__(self, table: LabelTable, names: tuple[str, ...]) -> None:
        n = len(table)
        self.codes: I32 = (
            np.stack([table.column(name) for name in names], axis=1)
            if names
            else np.zeros((n, 0), dtype=np.int32)
        )
        self.hashes: I64 = _hashed_key(self.codes)
        self._sorted: tuple[I64, I64] | None = None
        self._distinct: bool | None = None

    def _order(self) -> tuple[I64, I64]:
        """The order that sorts the hashes, and the hashes in it (made when first asked:
        most tables are only looked up in)."""
        if self._sorted is None:
            # Not a stable sort (three times the time): rows of equal hashes are never told
            # apart by their order here (find gives up on them).
            order: I64 = np.argsort(self.hashes)
            self._sorted = order, self.hashes[order]
        return self._sorted

    @property
    def distinct(self) -> bool:
        """Whether no two rows have the same hash (nor the same values, then)."""
        if self._distinct is None:
            # Kept: the keys of a round's shared values are looked up in many times.
            ordered = self._order()[1]
            self._distinct = bool((ordered[1:] != ordered[:-1]).all())
        return self._distinct

    def find(self, other: SignatureKeys) -> I64 | None:
        """For each row of ``other``, the row here with the same values (-1: none), when
        rows here are ``distinct``; None when they are not, or two different values share
        a hash (rows must then be matched exactly)."""
        if not self.distinct:
            return None
        order, ordered = self._order()
        if not len(ordered):
            return np.full(len(other.hashes), -1, dtype=np.int64)
        if other._sorted is None and len(other.hashes) < _SORTED_LOOKUPS_FROM:
            pos = np.searchsorted(ordered, other.hashes)
        else:
            # Looked up in the order of their hashes: each search then starts where the
            # last one ended, several times faster than in row order, which for tens of
            # thousands of rows more than pays for sorting them (kept, as here).
            other_order, other_ordered = other._order()
            pos = np.empty(len(other_order), dtype=np.int64)
            pos[other_order] = np.searchsorted(ordered, other_ordered)
        np.minimum(pos, len(ordered) - 1, out=pos)
        found = ordered[pos] == other.hashes
        rows: I64 = np.where(found, order[pos], -1)
        hit = np.flatnonzero(found)
        if len(hit) and not (self.codes[rows[hit]] == other.codes[hit]).all():
            return None
        return rows


def concat(tables: Sequence[LabelTable]) -> LabelTable:
    """Rows of several tables, one after the other."""
    strings = tables[0].strings
    tables = [t.in_strings(strings) for t in tables]
    names = sorted({name for t in tables for name in t.names})
    codes = np.concatenate([t.aligned(names) for t in tables]) if tables else np.zeros((0, 0))
    tuples: list[Labels] | None = []
    for t in tables:
        if t._tuples is None:
            tuples = None
            break
        assert tuples is not None
        tuples.extend(t._tuples)
    return LabelTable(names, codes.astype(np.int32, copy=False), strings, tuples)


def factorize_pair(a: LabelTable, b: LabelTable) -> tuple[I64, I64, int]:
    """Group ids of the rows of two tables in one numbering (equal label sets, equal ids);
    also the number of groups."""
    b = b.in_strings(a.strings)
    names = sorted({*a.names, *b.names})
    stacked = np.concatenate([a.aligned(names), b.aligned(names)])
    first, ids = factorize(stacked)
    return ids[: len(a)], ids[len(a) :], len(first)


def factorize(codes: I32) -> tuple[I64, I64]:
    """Equal rows as groups: the first row of each group (in order of first appearance)
    and each row's group."""
    n = codes.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    k = codes.shape[1] if codes.ndim == 2 else 0
    if k == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    exact = True
    if k == 1:
        key = codes[:, 0].astype(np.int64)
    else:
        exact_key = _exact_key(codes)
        exact = exact_key is not None
        key = exact_key if exact_key is not None else _hashed_key(codes)
    runs = _contiguous_groups(key)
    if runs is not None and (exact or (codes == codes[runs[0][runs[1]]]).all()):
        return runs
    first, inverse = _groups_of(key)
    if not exact and not (codes == codes[first[inverse]]).all():
        # Two label sets with one hash: group exactly (slower, and practically never).
        _, first, inverse = np.unique(codes, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(n)
    # Renumber groups in order of first appearance: a scatter and a running count, no sort.
    is_first = np.zeros(n, dtype=bool)
    is_first[first] = True
    rank = (np.cumsum(is_first) - 1)[first]
    ids: I64 = rank[inverse]
    firsts: I64 = np.empty(len(first), dtype=np.int64)
    firsts[rank] = first
    return firsts, ids


def _exact_key(codes: I32) -> I64 | None:
    """Each row as one integer, exactly (digits of each column's range of codes), when the
    ranges' product fits; None otherwise."""
    # Column by column: a reduction along the rows of the matrix is ten times slower.
    columns = [codes[:, j] for j in range(codes.shape[1])]
    lows = [int(c.min()) for c in columns]
    spans = [int(c.max()) - low + 1 for c, low in zip(columns, lows, strict=True)]
    if math.prod(spans) >= 2**62:
        return None
    key: I64 = columns[0].astype(np.int64)
    for c, span in zip(columns[1:], spans[1:], strict=True):
        key *= span
        key += c
    # Less the lowest codes' number, so that keys fit: sums wrap around 64 bits, and the
    # result (below 2**62) is exact once the constant is taken modulo 2**64 too.
    offset = sum(low * math.prod(spans[j + 1 :]) for j, low in enumerate(lows))
    key -= (offset + 2**63) % 2**64 - 2**63
    return key


def _hashed_key(codes: I32) -> I64:
    """Each row as a 64-bit hash of its codes (equal rows, equal hashes)."""
    h = np.zeros(codes.shape[0], dtype=np.uint64)
    for j in range(codes.shape[1]):
        h = (h ^ (codes[:, j].astype(np.uint64) * _SALT)) * _MIX
        h ^= h >> np.uint64(31)
    return h.view(np.int64)


def _contiguous_groups(key: I64) -> tuple[I64, I64] | None:
    """Groups when each key's rows sit together (series of a target come out in order,
    so grouping by pod often finds its rows side by side): a pass over the rows and a
    sort of one key per run, instead of a sort of every row. None when a key comes back."""
    new_run = np.empty(len(key), dtype=bool)
    new_run[0] = True
    np.not_equal(key[1:], key[:-1], out=new_run[1:])
    starts = np.flatnonzero(new_run)
    if len(starts) > 1:
        run_keys = np.sort(key[starts])
        if not (run_keys[1:] != run_keys[:-1]).all():
            return None
    ids: I64 = np.cumsum(new_run) - 1
    return starts.astype(np.int64), ids


def _groups_of(key: I64) -> tuple[I64, I64]:
    """Equal keys as groups (in key order): each group's first row and each row's group."""
    n = len(key)
    perm = np.argsort(key)
    ordered = key[perm]
    starts_group = np.empty(n, dtype=bool)
    starts_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    # An unstable sort scatters a group's rows: its first row is the smallest of them.
    first: I64 = np.minimum.reduceat(perm, np.flatnonzero(starts_group)).astype(np.int64)
    inverse: I64 = np.empty(n, dtype=np.int64)
    inverse[perm] = np.cumsum(starts_group) - 1
    return first, inverse
