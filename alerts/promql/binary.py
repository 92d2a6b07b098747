"""Binary operators: arithmetic, comparisons and set operators, with vector matching."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from alerts.promql.errors import EvaluationError
from alerts.promql.values import F64, Mask, Vector, drop_name, format_series
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
    return [signature(lb, m.on, m.labels) for lb in vec.labels]


def set_operation(op: str, lhs: Vector, rhs: Vector, m: Matching) -> Vector:
    """``and``, ``or`` and ``unless``, step by step."""
    lsig, rsig = _signatures(lhs, m), _signatures(rhs, m)
    steps = lhs.steps if len(lhs) else rhs.steps
    if op == "or":
        lhs_any = _presence_by_sig(lsig, lhs.present, steps)
        rhs_present = rhs.present & ~np.array(
            [lhs_any.get(s, np.zeros(steps, dtype=bool)) for s in rsig], dtype=bool
        ).reshape(rhs.present.shape)
        merged = Vector(
            lhs.labels + rhs.labels,
            np.concatenate([lhs.values, rhs.values]),
            np.concatenate([lhs.present, rhs_present]),
            np.concatenate([lhs.drop_name, rhs.drop_name]),
        )
        rows = merged.present.any(axis=1)
        return merged if rows.all() else merged.take(rows)
    rhs_any = _presence_by_sig(rsig, rhs.present, steps)
    other = np.array(
        [rhs_any.get(s, np.zeros(steps, dtype=bool)) for s in lsig], dtype=bool
    ).reshape(lhs.present.shape)
    keep = lhs.present & (other if op == "and" else ~other)
    out = Vector(lhs.labels, lhs.values, keep, lhs.drop_name)
    rows = keep.any(axis=1)
    return out if rows.all() else out.take(rows)


def _presence_by_sig(sigs: list[Labels], present: Mask, steps: int) -> dict[Labels, Mask]:
    out: dict[Labels, Mask] = {}
    for i, s in enumerate(sigs):
        seen = out.get(s)
        out[s] = present[i].copy() if seen is None else seen | present[i]
    return out


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
    by_sig: dict[Labels, list[int]] = {}
    for j, s in enumerate(one_sigs):
        by_sig.setdefault(s, []).append(j)
    side = "left" if swapped else "right"
    # For every signature, which "one"-side row is present at each step (-1: none).
    pick: dict[Labels, np.ndarray] = {}
    for s, rows in by_sig.items():
        if len(rows) == 1:
            pick[s] = np.where(one.present[rows[0]], rows[0], -1)
            continue
        counts = one.present[rows].sum(axis=0)
        if (counts > 1).any():
            t = int(np.flatnonzero(counts > 1)[0])
            dup = sorted((one.labels[r] for r in rows if one.present[r, t]), key=format_series)
            raise EvaluationError(
                f"found duplicate series for the match group {format_series(s)} on the {side} "
                f"hand-side of the operation: [{format_series(dup[0])}, "
                f"{format_series(dup[1])}];many-to-many matching not allowed: matching labels "
                "must be unique on one side"
            )
        stacked = np.where(one.present[rows], np.array(rows)[:, None], -1)
        pick[s] = stacked.max(axis=0)
    many_sigs = _signatures(many, m)
    n, none = len(many), np.full(steps, -1)
    match = np.stack([pick.get(s, none) for s in many_sigs]) if n else np.zeros((0, steps), int)
    matched = many.present & (match >= 0)
    other_idx = np.where(match >= 0, match, 0)
    other_vals = one.values[other_idx, np.arange(steps)[None, :]]
    left, right = (other_vals, many.values) if swapped else (many.values, other_vals)
    result = apply(op, left, right)
    is_filter = op in COMPARISON and not m.return_bool
    present = matched & (result == 1.0) if is_filter else matched
    values = left if is_filter else result
    changes_schema = not is_filter
    labels: list[Labels] = []
    drop = np.zeros(n, dtype=bool)
    for i, lb in enumerate(many.labels):
        out = lb
        if m.card == "one-to-one":
            out = signature(lb, True, m.labels) if m.on else _without(lb, m.labels)
            if m.on and METRIC_NAME not in m.labels:
                out = drop_name(out)
        labels.append(out)
        drop[i] = changes_schema or bool(many.drop_name[i])
    if m.include:
        labels, present, origin = _include(labels, m.include, one, match, present)
        values, drop, matched = values[origin], drop[origin], matched[origin]
        many_sigs = [many_sigs[i] for i in origin.tolist()]
    _check_unique(labels, matched if m.card == "one-to-one" else present, many_sigs, m)
    vec = Vector(labels, np.where(present, values, 0.0), present, drop)
    kept = present.any(axis=1)
    return vec if kept.all() else vec.take(kept)


def _without(labels: Labels, names: Sequence[str]) -> Labels:
    dropped = set(names)
    return tuple(p for p in labels if p[0] not in dropped)


def _include(
    labels: list[Labels], include: Sequence[str], one: Vector, match: np.ndarray, present: Mask
) -> tuple[list[Labels], Mask, np.ndarray]:
    """Copy ``group_left/right`` labels from the matched "one"-side series. The "one" side
    may be a different series at different steps, so rows split by what they copy."""
    out_labels: list[Labels] = []
    rows: list[np.ndarray] = []
    origin: list[int] = []
    for i, lb in enumerate(labels):
        variants: dict[Labels, np.ndarray] = {}
        for t in np.flatnonzero(present[i]).tolist():
            src = one.labels[int(match[i, t])]
            extra = dict(lb)
            for name in include:
                value = next((v for k, v in src if k == name), "")
                if value:
                    extra[name] = value
                else:
                    extra.pop(name, None)
            key = tuple(sorted(extra.items()))
            mask = variants.setdefault(key, np.zeros(present.shape[1], dtype=bool))
            mask[t] = True
        for key, mask in variants.items():
            out_labels.append(key)
            rows.append(mask)
            origin.append(i)
    masks = np.array(rows, dtype=bool).reshape(len(rows), present.shape[1])
    return out_labels, masks, np.array(origin, dtype=np.int64)


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
