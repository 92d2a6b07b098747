"""Binary operators: arithmetic, comparisons and set operators, with vector matching."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from promql.errors import EvaluationError
from promql.labelsets import I64, LabelTable, concat, factorize_pair
from promql.values import F64, Mask, Vector, format_series
from tsdb.arrays import distinct_inverse
from tsdb.labels import METRIC_NAME

ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^", "atan2"})
COMPARISON = frozenset({"==", "!=", ">", "<", ">=", "<="})
SET_OPERATORS = frozenset({"and", "or", "unless"})


@dataclass(frozen=True)
class Matching:
    """How two vectors' series are paired (``on``/``ignoring``, ``group_left/right``)."""

    card: str = "one-to-one"  # or many-to-one, one-to-many, many-to-many
    on: bool = False
    labels: tuple[str, ...] = ()
    include: tuple[str, ...] = field(default=())
    return_bool: bool = False


def apply(op: str, a: F64, b: F64) -> F64:
    """The arithmetic or comparison ``op`` element-wise (comparisons give 1.0 or 0.0)."""
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "%":
            return np.fmod(a, b)
        if op == "^":
            return np.power(a, b)
        if op == "atan2":
            return np.arctan2(a, b)
        result = {
            "==": np.equal,
            "!=": np.not_equal,
            ">": np.greater,
            "<": np.less,
            ">=": np.greater_equal,
            "<=": np.less_equal,
        }[op](a, b)
        return result.astype(np.float64)


def scalar_scalar(op: str, a: F64, b: F64) -> F64:
    """Two scalars (comparisons need ``bool`` and give 0 or 1)."""
    return apply(op, a, b)


def vector_scalar(op: str, vec: Vector, s: F64, scalar_left: bool, return_bool: bool) -> Vector:
    """A vector and a scalar, in the written order."""
    a, b = (s[None, :], vec.values) if scalar_left else (vec.values, s[None, :])
    result = apply(op, a, b)
    result = np.broadcast_to(result, vec.values.shape)
    if op in COMPARISON and not return_bool:
        keep = vec.present & (result == 1.0)
        out = Vector(vec.table, vec.values, keep, vec.drop_name)
        rows = keep.any(axis=1)
        return out if rows.all() else out.take(rows)
    return Vector(vec.table, np.array(result), vec.present, np.ones(len(vec), dtype=bool))


def _signature_table(vec: Vector, m: Matching) -> LabelTable:
    if m.on:
        return vec.table.keep(m.labels)
    return vec.table.drop([*m.labels, METRIC_NAME])


def _signature_ids(a: Vector, b: Vector, m: Matching) -> tuple[I64, I64, int]:
    """Signatures of both sides numbered together: equal signatures, equal numbers."""
    return factorize_pair(_signature_table(a, m), _signature_table(b, m))


def _partners(many: Vector, one: Vector, m: Matching) -> I64 | None:
    """For each row of ``many``, the row of ``one`` with its signature (-1: none), when no
    two rows of ``one`` share a signature (and, one-to-one, no two of ``many``): a search
    among one side's signatures instead of numbering both sides' together. None when that
    does not hold: rows are then grouped by signature."""
    a, b = many.table, one.table
    if a.strings is not b.strings:
        return None
    if m.on:
        names = tuple(sorted(set(m.labels)))
    else:
        ignored = {*m.labels, METRIC_NAME}
        names = tuple(sorted({*a.names, *b.names} - ignored))
    many_keys = a.signature_keys(names)
    if m.card == "one-to-one" and not many_keys.distinct:
        return None
    return b.signature_keys(names).find(many_keys)


def set_operation(op: str, lhs: Vector, rhs: Vector, m: Matching) -> Vector:
    """``and``, ``or`` and ``unless``, step by step."""
    if op != "or" and len(lhs) and len(rhs):
        partner = _partners(lhs, rhs, Matching("many-to-many", m.on, m.labels))
        if partner is not None:
            has = partner >= 0
            other = rhs.present[np.where(has, partner, 0)] & has[:, None]
            return _filtered(lhs, lhs.present & (other if op == "and" else ~other))
    lsig, rsig, n_sigs = _signature_ids(lhs, rhs, m)
    steps = lhs.steps if len(lhs) else rhs.steps
    if op == "or":
        rhs_present = rhs.present & ~_present_in(lsig, lhs.present, rsig, n_sigs, steps)
        merged = Vector(
            concat([lhs.table, rhs.table]),
            np.concatenate([lhs.values, rhs.values]),
            np.concatenate([lhs.present, rhs_present]),
            np.concatenate([lhs.drop_name, rhs.drop_name]),
        )
        rows = merged.present.any(axis=1)
        return merged if rows.all() else merged.take(rows)
    other = _present_in(rsig, rhs.present, lsig, n_sigs, steps)
    keep = lhs.present & (other if op == "and" else ~other)
    return _filtered(lhs, keep)


def _filtered(lhs: Vector, keep: Mask) -> Vector:
    """``lhs`` where ``keep``, without the rows it leaves empty."""
    out = Vector(lhs.table, lhs.values, keep, lhs.drop_name)
    rows = keep.any(axis=1)
    return out if rows.all() else out.take(rows)


def _present_in(ids: I64, present: Mask, wanted: I64, n_sigs: int, steps: int) -> Mask:
    """For each of ``wanted``, whether some series with that signature is present, by step."""
    seen = np.zeros((n_sigs, steps), dtype=bool)
    groups = _Groups(ids)
    if groups.unique:
        seen[ids] = present
    elif len(ids):
        seen[groups.sigs] = np.logical_or.reduceat(present[groups.order], groups.firsts, axis=0)
    result: Mask = seen[wanted]
    return result


class _Groups:
    """Rows grouped by signature: ``order`` sorts them by it, and group ``g`` (signature
    ``sigs[g]``) is rows ``order[firsts[g]:firsts[g + 1]]``. Most joins have one row per
    signature on the "one" side (``unique``), and need no grouping at all."""

    def __init__(self, ids: I64) -> None:
        self.order: I64 = np.argsort(ids, kind="stable")
        ordered = ids[self.order]
        first = np.ones(len(ids), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        self.firsts: I64 = np.flatnonzero(first)
        self.sigs: I64 = ordered[self.firsts]
        self.unique = len(self.firsts) == len(ids)


def vector_vector(op: str, lhs: Vector, rhs: Vector, m: Matching) -> Vector:
    """Arithmetic or comparison between two vectors, pairing series by ``m``."""
    if op in SET_OPERATORS:
        return set_operation(op, lhs, rhs, m)
    swapped = m.card == "one-to-many"
    many, one = (rhs, lhs) if swapped else (lhs, rhs)
    steps = many.steps
    if not len(many) or not len(one):
        return Vector.empty(steps, many.table.strings)
    n = len(many)
    partner = _partners(many, one, m)
    if partner is not None:
        # No two "one"-side rows share a signature: each row has one partner at most.
        # (Signatures of "many" rows are distinct one-to-one, as the numbers say here.)
        many_ids = np.arange(n, dtype=np.int64)
        has = partner >= 0
        partner = np.where(has, partner, 0)
        one_present = one.present[partner]
        one_present &= has[:, None]
        match = np.where(one_present, partner[:, None], -1)
        matched = many.present & one_present
        other_vals = one.values[partner]
    else:
        many_ids, match = _pick(many, one, m, swapped)
        matched = many.present & (match >= 0)
        other_idx = np.where(match >= 0, match, 0)
        other_vals = one.values[other_idx, np.arange(steps)[None, :]]
    left, right = (other_vals, many.values) if swapped else (many.values, other_vals)
    result = apply(op, left, right)
    is_filter = op in COMPARISON and not m.return_bool
    present = matched & (result == 1.0) if is_filter else matched
    values = left if is_filter else result
    changes_schema = not is_filter
    table = many.table
    if m.card == "one-to-one":
        # With ``on``, the result keeps exactly the matching labels: the signatures.
        table = _signature_table(many, m) if m.on else table.drop(m.labels)
    drop = np.ones(n, dtype=bool) if changes_schema else many.drop_name.copy()
    if m.include:
        before = table
        table, present, origin = _include(table, m.include, one, match, present, partner)
        if len(origin) < n or partner is None:
            values, drop, matched = values[origin], drop[origin], matched[origin]
            many_ids = many_ids[origin]
        if _kept_distinct(before, table, m.include, origin):
            table = table.distinct()
    _check_unique(table, matched if m.card == "one-to-one" else present, many_ids, m)
    vec = Vector(table, np.where(present, values, 0.0), present, drop)
    kept = present.any(axis=1)
    return vec if kept.all() else vec.take(kept)


def _kept_distinct(
    before: LabelTable, after: LabelTable, include: Sequence[str], origin: I64
) -> bool:
    """Whether rows of a distinct table stay distinct once ``group_left/right`` copied
    labels into them (row ``i`` of ``after`` is row ``origin[i]`` of ``before``): each
    row at most once, and each copied label either one the rows all lacked or the value
    they already had (``group_left(node)`` onto cAdvisor series, which carry their
    node). Two rows made equal would then have been equal before. This spares the
    uniqueness checks a grouping of every row."""
    if not before.unique or not bool(np.all(origin[1:] > origin[:-1])):
        return False
    for name in dict.fromkeys(include):
        had = before.column(name)
        if had.any() and not np.array_equal(after.column(name), had[origin]):
            return False
    return True


def _pick(many: Vector, one: Vector, m: Matching, swapped: bool) -> tuple[I64, I64]:
    """The signature number of each "many" row, and the "one"-side row it matches at each
    step (-1: none); an error when two "one"-side rows match at the same step."""
    many_ids, one_ids, n_sigs = _signature_ids(many, one, m)
    steps = many.steps
    # For every signature, which "one"-side row is present at each step (-1: none).
    pick = np.full((n_sigs, steps), -1, dtype=np.int64)
    rows = np.where(one.present, np.arange(len(one), dtype=np.int64)[:, None], -1)
    groups = _Groups(one_ids)
    if groups.unique:
        pick[one_ids] = rows
    else:
        present = one.present[groups.order]
        per_sig = np.add.reduceat(present.astype(np.int64), groups.firsts, axis=0)
        if (per_sig > 1).any():
            counts = np.zeros((n_sigs, steps), dtype=np.int64)
            counts[groups.sigs] = per_sig
            _duplicate_error(one, one_ids, counts, m, "left" if swapped else "right")
        pick[groups.sigs] = np.maximum.reduceat(rows[groups.order], groups.firsts, axis=0)
    return many_ids, pick[many_ids]


def _duplicate_error(one: Vector, one_ids: I64, counts: np.ndarray, m: Matching, side: str) -> None:
    g = int(np.flatnonzero((counts > 1).any(axis=1))[0])
    t = int(np.flatnonzero(counts[g] > 1)[0])
    rows = np.flatnonzero((one_ids == g) & one.present[:, t])
    sig = _signature_table(one.take(rows[:1]), m).tuples()[0]
    dup = sorted(one.take(rows).labels, key=format_series)
    raise EvaluationError(
        f"found duplicate series for the match group {format_series(sig)} on the {side} "
        f"hand-side of the operation: [{format_series(dup[0])}, "
        f"{format_series(dup[1])}];many-to-many matching not allowed: matching labels "
        "must be unique on one side"
    )


def _include(
    table: LabelTable,
    include: Sequence[str],
    one: Vector,
    match: np.ndarray,
    present: Mask,
    partner: I64 | None = None,
) -> tuple[LabelTable, Mask, I64]:
    """Copy ``group_left/right`` labels from the matched "one"-side series. The "one" side
    may be a different series at different steps, so rows split by what they copy (unless
    each row has one ``partner`` at most)."""
    n, steps = present.shape
    source = one.table.in_strings(table.strings)
    names = list(dict.fromkeys(include))
    copied = np.stack([source.column(name) for name in names], axis=1)
    if partner is not None:
        origin = np.flatnonzero(present.any(axis=1))
        if len(origin) == n:
            return table.with_columns(names, copied[partner]), present, origin
        out = table.take(origin).with_columns(names, copied[partner[origin]])
        return out, present[origin], origin
    # Most rows match the same "one"-side series at every step (always, for an instant
    # query): they need one label set, not one per step.
    rows = np.arange(n)
    first = match[rows, present.argmax(axis=1)] if n else np.zeros(0, dtype=np.int64)
    steady = ((match == first[:, None]) | ~present).all(axis=1) & present.any(axis=1)
    origin = np.flatnonzero(steady)
    sources = first[origin]
    masks = present[origin]
    # Rows present at no step have nothing to copy: they are left out.
    unsteady = np.flatnonzero(~steady & present.any(axis=1))
    if len(unsteady):
        # Rows whose partner changes over time: one row per partner, merged where the
        # partners give the same labels.
        extra_origin: list[int] = []
        extra_source: list[int] = []
        extra_masks: list[Mask] = []
        for i in unsteady.tolist():
            variants: dict[tuple[int, ...], int] = {}
            for t in np.flatnonzero(present[i]).tolist():
                j = int(match[i, t])
                key = tuple(copied[j].tolist())
                at = variants.get(key)
                if at is None:
                    variants[key] = len(extra_masks)
                    extra_origin.append(i)
                    extra_source.append(j)
                    extra_masks.append(np.zeros(steps, dtype=bool))
                    at = len(extra_masks) - 1
                extra_masks[at][t] = True
        origin = np.concatenate([origin, np.array(extra_origin, dtype=np.int64)])
        sources = np.concatenate([sources, np.array(extra_source, dtype=np.int64)])
        masks = np.concatenate(
            [masks, np.array(extra_masks, dtype=bool).reshape(len(extra_masks), steps)]
        )
        order = np.argsort(origin, kind="stable")
        origin, sources, masks = origin[order], sources[order], masks[order]
    out = table.take(origin)
    for j, name in enumerate(names):
        out = out.with_column(name, copied[sources, j] if len(sources) else np.zeros(0, np.int32))
    return out, masks, origin.astype(np.int64)


def _check_unique(table: LabelTable, present: Mask, sig_ids: I64, m: Matching) -> None:
    if m.card != "one-to-one" and table.unique:
        return
    if m.card == "one-to-one":
        distinct, ids = distinct_inverse(sig_ids)
        n_groups = len(distinct)
    else:
        first, ids = table.factorize()
        n_groups = len(first)
    if n_groups == len(ids):
        return
    counts = np.zeros((n_groups, present.shape[1]), dtype=np.int64)
    np.add.at(counts, ids.reshape(len(ids)), present.astype(np.int64))
    if (counts > 1).any():
        if m.card == "one-to-one":
            raise EvaluationError(
                "multiple matches for labels: many-to-one matching must be explicit "
                "(group_left/group_right)"
            )
        raise EvaluationError(
            "multiple matches for labels: grouping labels must ensure unique matches"
        )
