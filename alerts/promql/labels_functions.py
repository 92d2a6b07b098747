"""``label_replace`` and ``label_join``: functions that rewrite label sets."""

from __future__ import annotations

import re

import numpy as np

from alerts.promql.errors import EvaluationError
from alerts.promql.values import Vector, get_label
from collectors.store.go_regex import to_python
from collectors.store.labels import METRIC_NAME, Labels

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_GROUP_REF = re.compile(r"\$(?:\{([^}]*)\}|([a-zA-Z0-9_]+)|(\$))")


def _set_label(labels: Labels, name: str, value: str) -> Labels:
    rest = [p for p in labels if p[0] != name]
    if value:
        rest.append((name, value))
    return tuple(sorted(rest))


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
    labels: list[Labels] = []
    drop = vec.drop_name.copy()
    for i, lb in enumerate(vec.labels):
        m = pattern.fullmatch(get_label(lb, src))
        if m is None:
            labels.append(lb)
            continue
        labels.append(_set_label(lb, dst, expand_template(replacement, m)))
        if dst == METRIC_NAME:
            drop[i] = False
    return Vector(labels, vec.values, vec.present, drop)


def label_join(vec: Vector, dst: str, separator: str, sources: list[str]) -> Vector:
    """Set ``dst`` to the values of ``sources`` joined by ``separator``."""
    if not _LABEL_NAME.match(dst) and dst != METRIC_NAME:
        raise EvaluationError(f"invalid destination label name in label_join(): {dst}")
    for s in sources:
        if not _LABEL_NAME.match(s) and s != METRIC_NAME:
            raise EvaluationError(f"invalid source label name in label_join(): {s}")
    labels = [
        _set_label(lb, dst, separator.join(get_label(lb, s) for s in sources)) for lb in vec.labels
    ]
    drop = vec.drop_name.copy()
    if dst == METRIC_NAME:
        drop[:] = False
    return Vector(labels, vec.values, vec.present, drop)


def merge_same_labels(vec: Vector, visible: bool = False) -> Vector:
    """Merge rows whose label sets are equal; two of them present at one step is the
    error Prometheus reports as ``vector cannot contain metrics with the same labelset``.

    With ``visible``, names marked for removal are removed first.
    """
    keys = vec.visible_labels() if visible else vec.labels
    if len(set(keys)) == len(keys):
        if visible:
            return Vector(keys, vec.values, vec.present, np.zeros(len(keys), dtype=bool))
        return vec
    first: dict[Labels, int] = {}
    groups: list[list[int]] = []
    for i, key in enumerate(keys):
        at = first.get(key)
        if at is None:
            first[key] = len(groups)
            groups.append([i])
        else:
            groups[at].append(i)
    if len(groups) == len(keys):
        if visible:
            return Vector(keys, vec.values, vec.present, np.zeros(len(keys), dtype=bool))
        return vec
    values = np.zeros((len(groups), vec.steps))
    present = np.zeros((len(groups), vec.steps), dtype=bool)
    drop = np.zeros(len(groups), dtype=bool)
    out_labels: list[Labels] = []
    for g, rows in enumerate(groups):
        if len(rows) > 1 and (vec.present[rows].sum(axis=0) > 1).any():
            raise EvaluationError("vector cannot contain metrics with the same labelset")
        sub_present = vec.present[rows]
        values[g] = (np.where(sub_present, vec.values[rows], 0.0)).sum(axis=0)
        present[g] = sub_present.any(axis=0)
        drop[g] = bool(vec.drop_name[rows[0]]) and not visible
        out_labels.append(keys[rows[0]])
    return Vector(out_labels, values, present, drop)
