"""The values PromQL expressions evaluate to, held for every evaluation step at once.

An expression is evaluated at ``T`` timestamps together (one for an instant query). A
:class:`Vector` is a rectangle of ``n`` series by ``T`` steps with a presence mask, so
element-wise work is one numpy operation. A :class:`Matrix` is the input of range
functions: the samples of ``n`` series concatenated, with each step's window given as
``[lo, hi)`` indices into them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from collectors.store.labels import METRIC_NAME, Labels

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


def drop_name(labels: Labels) -> Labels:
    """The label set without ``__name__``."""
    return tuple(p for p in labels if p[0] != METRIC_NAME)


def project(labels: list[Labels], names: Collection[str], keep: bool) -> list[Labels]:
    """Every label set cut to ``names`` (``keep``) or without them and ``__name__``.

    Done for a whole vector at once: matching and grouping cut every series, and one
    comprehension over the vector costs far less than a call per series.
    """
    if keep:
        chosen = frozenset(names)
        return [tuple([p for p in lb if p[0] in chosen]) for lb in labels]
    dropped = frozenset([*names, METRIC_NAME])
    return [tuple([p for p in lb if p[0] not in dropped]) for lb in labels]


def get_label(labels: Labels, name: str) -> str:
    """A label's value, ``""`` when absent."""
    for k, v in labels:
        if k == name:
            return v
    return ""


def format_series(labels: Labels) -> str:
    """Labels as Prometheus' ``labels.String()`` prints them: ``{a="1", b="2"}``."""
    inner = ", ".join(f"{k}={_quote(v)}" for k, v in labels)
    return "{" + inner + "}"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@dataclass
class Scalar:
    """One float per step."""

    values: F64


@dataclass
class String:
    """A string literal (the same at every step)."""

    value: str


@dataclass
class Vector:
    """An instant vector at every step: ``values[i, t]`` is valid where ``present[i, t]``.

    ``drop_name[i]`` marks series whose ``__name__`` is removed when the result is
    returned: Prometheus 3 delays that removal so that ``label_replace`` can still read it.
    ``sample_ts`` holds the sample timestamps when the vector comes straight from a
    selector (``timestamp()`` needs them).
    """

    labels: list[Labels]
    values: F64
    present: Mask
    drop_name: Mask
    sample_ts: I64 | None = None

    @classmethod
    def empty(cls, steps: int) -> Vector:
        """No series."""
        return cls(
            [],
            np.zeros((0, steps)),
            np.zeros((0, steps), dtype=bool),
            np.zeros(0, dtype=bool),
        )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def steps(self) -> int:
        """Number of evaluation steps."""
        return int(self.values.shape[1])

    def take(self, rows: npt.ArrayLike) -> Vector:
        """The vector restricted to some series (by index or boolean mask)."""
        idx = np.asarray(rows)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return Vector(
            [self.labels[i] for i in idx.tolist()],
            self.values[idx],
            self.present[idx],
            self.drop_name[idx],
            None if self.sample_ts is None else self.sample_ts[idx],
        )

    def visible_labels(self) -> list[Labels]:
        """Labels as they will be returned (``__name__`` gone where marked)."""
        if not self.drop_name.any():
            return list(self.labels)
        return [
            tuple([p for p in lb if p[0] != METRIC_NAME]) if d else lb
            for lb, d in zip(self.labels, self.drop_name.tolist(), strict=True)
        ]


@dataclass
class Matrix:
    """Range-vector windows, one per series and step.

    Samples of series ``i`` are ``ts[starts[i]:ends[i]]`` (sorted, no staleness markers);
    the window of step ``t`` is ``ts[lo[i, t]:hi[i, t]]``, the samples in
    ``(times[t] - range_ms, times[t]]``.
    """

    labels: list[Labels]
    ts: I64
    vals: F64
    starts: I64
    ends: I64
    lo: I64
    hi: I64
    times: I64
    range_ms: int
    drop_name: Mask
    from_selector: bool = False
    metric_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def counts(self) -> I64:
        """Samples in each window, shape ``(n, T)``."""
        counts: I64 = self.hi - self.lo
        return counts


Value = Scalar | String | Vector | Matrix
