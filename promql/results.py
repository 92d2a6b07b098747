"""What queries return: series as Python objects, made when the caller first asks for them.

Evaluation works on whole arrays; turning a result into one :class:`SeriesResult` per
series (a label tuple, two small arrays) is the one step that costs a Python object per
series. :class:`QueryResult` defers it, so a caller that only needs to know how many series
came back, or never reads the result, does not pay for it; a caller that works on whole
columns too (the rule engine writing recorded series) reads :meth:`QueryResult.columns`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from promql.context import Annotations
from promql.errors import EvaluationError
from promql.labelsets import LabelTable
from promql.values import F64, I64, Mask, Matrix, Scalar, String, Value, Vector
from tsdb.labels import Labels

ResultType = Literal["vector", "matrix", "scalar", "string"]


@dataclass(slots=True)
class SeriesResult:
    """One series of a result: its labels and its points (ms timestamps, values)."""

    labels: Labels
    timestamps: I64
    values: F64


@dataclass(frozen=True, slots=True)
class VectorColumns:
    """An instant vector result as columns: series ``i`` has the labels of row ``i`` of
    :attr:`table` and the value ``values[i]``; rows are in the order of
    :attr:`QueryResult.series`."""

    table: LabelTable
    values: F64

    def __len__(self) -> int:
        return len(self.table)

    def labels(self) -> list[Labels]:
        """Every series' labels as a tuple (what :attr:`SeriesResult.labels` holds)."""
        return self.table.tuples()


@dataclass(frozen=True, slots=True)
class RangeColumns:
    """A range query's result as columns: series ``i`` has the labels ``labels[i]`` (in
    the order of :attr:`QueryResult.series`, sorted) and the value ``values[i, k]`` at
    ``times[k]`` where ``present[i, k]``."""

    labels: list[Labels]
    times: I64
    values: F64
    present: Mask


class QueryResult:
    """What a query returns, with the annotations it raised."""

    def __init__(
        self,
        type: ResultType,
        series: list[SeriesResult] | None = None,
        scalar: float = math.nan,
        string: str = "",
        timestamp_ms: int = 0,
        annotations: Annotations | None = None,
    ) -> None:
        self.type: ResultType = type
        self.scalar = scalar
        self.string = string
        self.timestamp_ms = timestamp_ms
        self.annotations = annotations if annotations is not None else Annotations()
        self._series = series if series is not None else []
        self._build: Callable[[], list[SeriesResult]] | None = None
        self._count = len(self._series)
        self._columns: VectorColumns | None = None
        self._range_columns: RangeColumns | None = None

    @classmethod
    def deferred(
        cls, type: ResultType, count: int, build: Callable[[], list[SeriesResult]], **kw: int
    ) -> QueryResult:
        """A result whose ``count`` series ``build`` makes on first access."""
        result = cls(type, **kw)  # type: ignore[arg-type]
        result._build = build
        result._count = count
        return result

    @property
    def series(self) -> list[SeriesResult]:
        """The series of a vector or matrix result."""
        if self._build is not None:
            self._series, self._build = self._build(), None
        return self._series

    @series.setter
    def series(self, series: list[SeriesResult]) -> None:
        self._series, self._build, self._count = series, None, len(series)
        self._columns = None
        self._range_columns = None

    def columns(self) -> VectorColumns:
        """The series of a vector result as label codes and a value column, without a
        Python object per series."""
        if self.type != "vector":
            raise EvaluationError(f"a {self.type} result has no vector columns")
        if self._columns is None:
            series = self.series
            self._columns = VectorColumns(
                LabelTable.from_tuples([s.labels for s in series]),
                np.array([float(s.values[0]) for s in series], dtype=np.float64),
            )
        return self._columns

    def range_columns(self) -> RangeColumns | None:
        """The series of a range query's result as columns, without a Python object per
        series; None for other results."""
        return self._range_columns

    @property
    def series_count(self) -> int:
        """How many series :attr:`series` holds, without making them."""
        return self._count if self._build is not None else len(self._series)

    def __repr__(self) -> str:
        return (
            f"QueryResult(type={self.type!r}, series={self.series_count} series, "
            f"scalar={self.scalar!r}, string={self.string!r}, timestamp_ms={self.timestamp_ms})"
        )


def instant_result(value: Value, at_ms: int) -> QueryResult:
    """The result of an instant query."""
    if isinstance(value, Scalar):
        return QueryResult("scalar", scalar=float(value.values[0]), timestamp_ms=at_ms)
    if isinstance(value, String):
        return QueryResult("string", string=value.value, timestamp_ms=at_ms)
    if isinstance(value, Vector):
        rows = np.flatnonzero(value.present[:, 0])
        columns = VectorColumns(value.table.take(rows), value.values[rows, 0])

        def vector() -> list[SeriesResult]:
            labels = columns.labels()
            # One read-only timestamp array for all; each series gets a view of its row.
            stamp = np.array([at_ms], dtype=np.int64)
            stamp.flags.writeable = False
            column = columns.values[:, None]
            return [SeriesResult(lb, stamp, v) for lb, v in zip(labels, column, strict=True)]

        result = QueryResult.deferred("vector", len(rows), vector, timestamp_ms=at_ms)
        result._columns = columns
        return result
    out = []
    visible = value.table.without_name(value.drop_name).tuples()
    for i, lb in enumerate(visible):
        a, b = int(value.lo[i, 0]), int(value.hi[i, 0])
        if b > a:
            out.append(SeriesResult(lb, value.ts[a:b].copy(), value.vals[a:b].copy()))
    return QueryResult("matrix", series=out, timestamp_ms=at_ms)


def range_result(value: Value, times: I64) -> QueryResult:
    """The result of a range query: series sorted by labels."""
    if isinstance(value, Scalar):
        columns = RangeColumns([()], times, value.values[None, :], np.ones((1, len(times)), bool))
    elif isinstance(value, Vector):
        rows = np.flatnonzero(value.present.any(axis=1))
        labels = value.table.take(rows).tuples()
        order = sorted(range(len(labels)), key=labels.__getitem__)
        picked = rows[np.array(order, dtype=np.int64)]
        columns = RangeColumns(
            [labels[i] for i in order], times, value.values[picked], value.present[picked]
        )
    else:
        kind = "range vector" if isinstance(value, Matrix) else "string"
        raise EvaluationError(
            f'invalid expression type "{kind}" for range query, must be Scalar or instant Vector'
        )

    def matrix() -> list[SeriesResult]:
        t, vals, present = columns.times, columns.values, columns.present
        return [
            SeriesResult(lb, t[present[i]], vals[i][present[i]])
            for i, lb in enumerate(columns.labels)
        ]

    result = QueryResult.deferred("matrix", len(columns.labels), matrix)
    result._range_columns = columns
    return result
