"""Binary operators: arithmetic, comparisons and set operators, with vector matching."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from alerts.promql.errors import EvaluationError
from alerts.promql.values import F64, Mask, Vector, format_series, get_label, project
from collectors.store.labels import METRIC_NAME, Labels

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
        out = Vector(vec.labels, vec.values, keep, vec.drop_name)
        rows = keep.any(axis=1)
        return out if rows.all() else out.take(rows)
    return Vector(vec.labels, np.array(result), vec.present, np.ones(len(vec), dtype=bool))


def signature(labels: Labels, on: bool, names: Sequence[str]) -> Labels:
    """The part of a label set that vector matching compares."""
    if on:
        wanted = set(names)
        return tuple(p for p in labels if p[0] in wanted)
    dropped = {*names, METRIC_NAME}
    return tuple(p for p in labels if p[0] not in dropped)


def _signatures(vec: Vector, m: Matching) -> list[Labels]:
    return project(vec.labels, m.labels, m.on)


def set_operation(op: str, lhs: Vector, rhs: Vector, m: Matching) -> Vector:
    """``and``, ``or`` and ``unless``, step by step."""
    lsig, rsig = _signatures(lhs, m), _signatures(rhs, m)
    steps = lhs.steps if len(lhs) else rhs.steps
    if op == "or":
        rhs_present = rhs.present & ~_present_in(lsig, lhs.present, rsig, steps)
        merged = Vector(
            lhs.labels + rhs.labels,
            np.concatenate([lhs.values, rhs.values]),
            np.concatenate([lhs.present, rhs_present]),
            np.concatenate([lhs.drop_name, rhs.drop_name]),
        )
        rows = merged.present.any(axis=1)
        return merged if rows.all() else merged.take(rows)
    other = _present_in(rsig, rhs.present, lsig, steps)
    keep = lhs.present & (other if op == "and" else ~other)
    out = Vector(lhs.labels, lhs.values, keep, lhs.drop_name)
    rows = keep.any(axis=1)
    return out if rows.all() else out.take(rows)


def _present_in(sigs: list[Labels], present: Mask, wanted: list[Labels], steps: int) -> Mask:
    """For each of ``wanted``, whether some series with that signature is present, by step."""
    index: dict[Labels, int] = {}
    put = index.setdefault
    ids = np.array([put(sig, len(index)) for sig in sigs], dtype=np.int64)
    # One spare row, all False, for signatures the other side lacks.
    seen = np.zeros((len(index) + 1, steps), dtype=bool)
    hit_rows, hit_steps = np.nonzero(present)
    seen[ids[hit_rows], hit_steps] = True
    absent = len(index)
    look = np.array([index.get(sig, absent) for sig in wanted], dtype=np.int64)
    result: Mask = seen[look]
    return result


def vector_vector(op: str, lhs: Vector, rhs: Vector, m: Matching) -> Vector:
    """Arithmetic or comparison between two vectors, pairing series by ``m``."""
    if op in SET_OPERATORS:
        return set_operation(op, lhs, rhs, m)
    swapped = m.card == "one-to-many"
    many, one = (rhs, lhs) if swapped else (lhs, rhs)
    steps = many.steps
    if not len(many) or not len(one):
        return Vector.empty(steps)
    one_sigs = _signatures(one, m)
    index: dict[Labels, int] = {}
    put = index.setdefault
    one_ids = np.array([put(sig, len(index)) for sig in one_sigs], dtype=np.int64)
    side = "left" if swapped else "right"
    counts = np.zeros((len(index), steps), dtype=np.int64)
    np.add.at(counts, one_ids, one.present.astype(np.int64))
    if (counts > 1).any():
        g = int(np.flatnonzero((counts > 1).any(axis=1))[0])
        t = int(np.flatnonzero(counts[g] > 1)[0])
        s = list(index)[g]
        rows = np.flatnonzero((one_ids == g) & one.present[:, t]).tolist()
        dup = sorted((one.labels[r] for r in rows), key=format_series)
        raise EvaluationError(
            f"found duplicate series for the match group {format_series(s)} on the {side} "
            f"hand-side of the operation: [{format_series(dup[0])}, "
            f"{format_series(dup[1])}];many-to-many matching not allowed: matching labels "
            "must be unique on one side"
        )
    # For every signature, which "one"-side row is present at each step (-1: none).
    pick = np.full((len(index) + 1, steps), -1, dtype=np.int64)
    hit_rows, hit_steps = np.nonzero(one.present)
    pick[one_ids[hit_rows], hit_steps] = hit_rows
    many_sigs = _signatures(many, m)
    n = len(many)
    # Signatures the "one" side lacks point at the last row of ``pick``, all -1.
    unknown = len(index)
    many_ids = np.array([index.get(sig, unknown) for sig in many_sigs], dtype=np.int64)
    match = pick[many_ids]
    matched = many.present & (match >= 0)
    other_idx = np.where(match >= 0, match, 0)
    other_vals = one.values[other_idx, np.arange(steps)[None, :]]
    left, right = (other_vals, many.values) if swapped else (many.values, other_vals)
    result = apply(op, left, right)
    is_filter = op in COMPARISON and not m.return_bool
    present = matched & (result == 1.0) if is_filter else matched
    values = left if is_filter else result
    changes_schema = not is_filter
    labels: list[Labels] = many.labels
    if m.card == "one-to-one":
        # With ``on``, the result keeps exactly the matching labels: the signatures.
        labels = many_sigs if m.on else _without(many.labels, m.labels)
    drop = np.ones(n, dtype=bool) if changes_schema else many.drop_name.copy()
    if m.include:
        labels, present, origin = _include(labels, m.include, one, match, present)
        values, drop, matched = values[origin], drop[origin], matched[origin]
        many_sigs = [many_sigs[i] for i in origin.tolist()]
    _check_unique(labels, matched if m.card == "one-to-one" else present, many_sigs, m)
    vec = Vector(labels, np.where(present, values, 0.0), present, drop)
    kept = present.any(axis=1)
    return vec if kept.all() else vec.take(kept)


def _without(labels: list[Labels], names: Sequence[str]) -> list[Labels]:
    dropped = frozenset(names)
    return [tuple([p for p in lb if p[0] not in dropped]) for lb in labels]


def _include(
    labels: list[Labels], include: Sequence[str], one: Vector, match: np.ndarray, present: Mask
) -> tuple[list[Labels], Mask, np.ndarray]:
    """Copy ``group_left/right`` labels from the matched "one"-side series. The "one" side
    may be a different series at different steps, so rows split by what they copy."""
    n, steps = present.shape
    copied = [tuple((name, get_label(src, name)) for name in include) for src in one.labels]
    # Most rows match the same "one"-side series at every step (always, for an instant
    # query): they need one label set, not one per step.
    rows = np.arange(n)
    first = match[rows, present.argmax(axis=1)] if n else np.zeros(0, dtype=np.int64)
    steady = ((match == first[:, None]) | ~present).all(axis=1) & present.any(axis=1)
    out_labels: list[Labels] = []
    masks: list[Mask] = []
    origin: list[int] = []
    first_of = first.tolist()
    for i, lb in enumerate(labels):
        if steady[i]:
            out_labels.append(_with_copied(lb, copied[first_of[i]]))
            masks.append(present[i])
            origin.append(i)
            continue
        variants: dict[Labels, Mask] = {}
        for t in np.flatnonzero(present[i]).tolist():
            key = _with_copied(lb, copied[int(match[i, t])])
            mask = variants.setdefault(key, np.zeros(steps, dtype=bool))
            mask[t] = True
        for key, mask in variants.items():
            out_labels.append(key)
            masks.append(mask)
            origin.append(i)
    stacked = np.array(masks, dtype=bool).reshape(len(masks), steps)
    return out_labels, stacked, np.array(origin, dtype=np.int64)


def _with_copied(labels: Labels, copied: Labels) -> Labels:
    """``labels`` with the copied values set, and removed where the source lacks them."""
    names = {k for k, _ in copied}
    kept = [p for p in labels if p[0] not in names]
    kept.extend(p for p in copied if p[1])
    kept.sort()
    return tuple(kept)


def _check_unique(labels: list[Labels], present: Mask, sigs: list[Labels], m: Matching) -> None:
    seen: dict[Labels, int] = {}
    for i, lb in enumerate(labels):
        key = lb if m.card != "one-to-one" else sigs[i]
        j = seen.get(key)
        if j is None:
            seen[key] = i
            continue
        if (present[i] & present[j]).any():
            if m.card == "one-to-one":
                raise EvaluationError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
            raise EvaluationError(
                "multiple matches for labels: grouping labels must ensure unique matches"
            )
