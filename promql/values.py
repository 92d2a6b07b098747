"""The values PromQL expressions evaluate to, held for every evaluation step at once.

An expression is evaluated at ``T`` timestamps together (one for an instant query). A
:class:`Vector` is a rectangle of ``n`` series by ``T`` steps with a presence mask, so
element-wise work is one numpy operation. A :class:`Matrix` is the input of range
functions: the samples of ``n`` series concatenated, with each step's window given as
``[lo, hi)`` indices into them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from promql.labelsets import LabelTable, Strings
from tsdb.labels import METRIC_NAME, Labels

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


def drop_name(labels: Labels) -> Labels:
    """The label set without ``__name__``."""
    return tuple(p for p in labels if p[0] != METRIC_NAME)


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


class Vector:
    """An instant vector at every step: ``values[i, t]`` is valid where ``present[i, t]``.

    ``drop_name[i]`` marks series whose ``__name__`` is removed when the result is
    returned: Prometheus 3 delays that removal so that ``label_replace`` can still read it.
    ``sample_ts`` holds the sample timestamps when the vector comes straight from a
    selector (``timestamp()`` needs them). Labels are held as a :class:`LabelTable`
    (:attr:`table`); :attr:`labels` gives them as tuples.
    """

    __slots__ = ("_table", "drop_name", "present", "sample_ts", "values")

    def __init__(
        self,
        labels: list[Labels] | LabelTable,
        values: F64,
        present: Mask,
        drop_name: Mask,
        sample_ts: I64 | None = None,
    ) -> None:
        self._table = labels if isinstance(labels, LabelTable) else LabelTable.from_tuples(labels)
        self.values = values
        self.present = present
        self.drop_name = drop_name
        self.sample_ts = sample_ts

    @classmethod
    def empty(cls, steps: int, strings: Strings | None = None) -> Vector:
        """No series."""
        return cls(
            LabelTable.empty(strings),
            np.zeros((0, steps)),
            np.zeros((0, steps), dtype=bool),
            np.zeros(0, dtype=bool),
        )

    def __len__(self) -> int:
        return len(self._table)

    @property
    def table(self) -> LabelTable:
        """The label sets."""
        return self._table

    @property
    def labels(self) -> list[Labels]:
        """The label sets as tuples."""
        return self._table.tuples()

    @labels.setter
    def labels(self, labels: list[Labels]) -> None:
        self._table = LabelTable.from_tuples(labels, self._table.strings)

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
            self._table.take(idx),
            self.values[idx],
            self.present[idx],
            self.drop_name[idx],
            None if self.sample_ts is None else self.sample_ts[idx],
        )

    def visible_table(self) -> LabelTable:
        """Labels as they will be returned (``__name__`` gone where marked)."""
        table = self._table
        out = table.without_name(self.drop_name)
        if out is table or not table.unique or not self.drop_name.all():
            return out
        # Distinct label sets of one metric stay distinct without it.
        name = table.column(METRIC_NAME)
        return out.distinct() if (name == name[0]).all() else out


@dataclass
class Matrix:
    """Range-vector windows, one per series and step.

    Samples of series ``i`` are ``ts[starts[i]:ends[i]]`` (sorted, no staleness markers);
    the window of step ``t`` is ``ts[lo[i, t]:hi[i, t]]``, the samples in
    ``(times[t] - range_ms, times[t]]``.
    """

    table: LabelTable
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
        return len(self.table)

    @property
    def labels(self) -> list[Labels]:
        """The label sets as tuples."""
        return self.table.tuples()

    @property
    def counts(self) -> I64:
        """Samples in each window, shape ``(n, T)``."""
        counts: I64 = self.hi - self.lo
        return counts


Value = Scalar | String | Vector | Matrix
