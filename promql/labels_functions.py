"""``label_replace`` and ``label_join``: functions that rewrite label sets."""

from __future__ import annotations

import re

import numpy as np

from promql.errors import EvaluationError
from promql.labelsets import factorize
from promql.values import Vector
from tsdb.arrays import distinct_inverse
from tsdb.go_regex import to_python
from tsdb.labels import METRIC_NAME

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_WHOLE_VALUE = frozenset({"(.*)", "(.+)"})
_FIRST_GROUP = frozenset({"$1", "${1}"})
_GROUP_REF = re.compile(r"\$(?:\{([^}]*)\}|([a-zA-Z0-9_]+)|(\$))")


def expand_template(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``; unknown groups give ``""``.

    A bare ``$name`` takes the longest run of word characters, so ``$1x`` names group
    ``1x`` (which does not exist) exactly as in Prometheus.
    """

    def group(m: re.Match[str]) -> str:
        if m.group(3):
            return "$"
        name = m.group(1) if m.group(1) is not None else m.group(2)
        try:
            value = match.group(int(name)) if name.isdigit() else match.group(name)
        except IndexError:
            return ""
        return value or ""

    return _GROUP_REF.sub(group, template)


def label_replace(vec: Vector, dst: str, replacement: str, src: str, regex: str) -> Vector:
    """Set ``dst`` from ``replacement`` where ``regex`` matches the whole of ``src``."""
    try:
        pattern = re.compile(f"(?s:{to_python(regex)})")
    except re.error as e:
        raise EvaluationError(f"invalid regular expression in label_replace(): {regex}") from e
    if not _LABEL_NAME.match(dst) and dst != METRIC_NAME:
        raise EvaluationError(f"invalid destination label name in label_replace(): {dst}")
    table = vec.table
    strings = table.strings
    source = table.column(src)
    # The regex runs once per distinct source value, not once per series.
    distinct, inverse = distinct_inverse(source)
    if regex in _WHOLE_VALUE and replacement in _FIRST_GROUP:
        # Copying a label (or its non-empty values): each value's code is its own result.
        matched = distinct != 0 if regex == "(.+)" else np.ones(len(distinct), dtype=bool)
        result = distinct.astype(np.int32)
    else:
        matched = np.zeros(len(distinct), dtype=bool)
        result = np.zeros(len(distinct), dtype=np.int32)
        for g, code in enumerate(distinct.tolist()):
            m = pattern.fullmatch(strings.value(code) if code else "")
            if m is not None:
                matched[g] = True
                result[g] = strings.code(expand_template(replacement, m))
    hit = matched[inverse.reshape(len(source))]
    if not hit.any():
        return Vector(table, vec.values, vec.present, vec.drop_name.copy())
    codes = np.where(hit, result[inverse.reshape(len(source))], table.column(dst))
    drop = vec.drop_name.copy()
    if dst == METRIC_NAME:
        drop[hit] = False
    return Vector(table.with_column(dst, codes.astype(np.int32)), vec.values, vec.present, drop)


def label_join(vec: Vector, dst: str, separator: str, sources: list[str]) -> Vector:
    """Set ``dst`` to the values of ``sources`` joined by ``separator``."""
    if not _LABEL_NAME.match(dst) and dst != METRIC_NAME:
        raise EvaluationError(f"invalid destination label name in label_join(): {dst}")
    for s in sources:
        if not _LABEL_NAME.match(s) and s != METRIC_NAME:
            raise EvaluationError(f"invalid source label name in label_join(): {s}")
    table = vec.table
    strings = table.strings
    parts = np.stack([table.column(s) for s in sources], axis=1) if sources else None
    if parts is None:
        codes = np.zeros(len(table), dtype=np.int32)
    else:
        first, ids = factorize(parts)
        joined = strings.codes(
            separator.join(strings.value(int(c)) if c else "" for c in parts[row])
            for row in first.tolist()
        )
        codes = joined[ids] if len(ids) else np.zeros(0, dtype=np.int32)
    drop = vec.drop_name.copy()
    if dst == METRIC_NAME:
        drop[:] = False
    return Vector(table.with_column(dst, codes), vec.values, vec.present, drop)


def merge_same_labels(vec: Vector, visible: bool = False) -> Vector:
    """Merge rows whose label sets are equal; two of them present at one step is the
    error Prometheus reports as ``vector cannot contain metrics with the same labelset``.

    With ``visible``, names marked for removal are removed first.
    """
    table = vec.visible_table() if visible else vec.table
    if table.unique:
        drop = np.zeros(len(table), dtype=bool) if visible else vec.drop_name
        return Vector(table, vec.values, vec.present, drop, vec.sample_ts)
    first, ids = table.factorize()
    n_groups = len(first)
    if n_groups == len(table):
        drop = np.zeros(len(table), dtype=bool) if visible else vec.drop_name
        return Vector(table.distinct(), vec.values, vec.present, drop, vec.sample_ts)
    counts = np.zeros((n_groups, vec.steps), dtype=np.int64)
    np.add.at(counts, ids, vec.present.astype(np.int64))
    if (counts > 1).any():
        raise EvaluationError("vector cannot contain metrics with the same labelset")
    values = np.zeros((n_groups, vec.steps))
    np.add.at(values, ids, np.where(vec.present, vec.values, 0.0))
    drop = vec.drop_name[first] & (not visible)
    return Vector(table.take(first).distinct(), values, counts > 0, drop)
