"""Queries over a remote Prometheus-compatible store, with the embedded store as a buffer.

With ``storage.query_url`` set, the series that rules, forecasts and the controller read live
in a remote store (fed by remote write); the embedded store holds only what was collected
recently. :class:`BufferedQuerier` answers a selection from the embedded store alone when the
range lies within what it has held since it started buffering, and otherwise merges: per
series, the remote samples older than the series' first buffered sample, then the buffered
ones. Buffered samples win where both have a series (they are what was collected; the remote
copy may lag behind by a remote-write batch).

Where the remote store cannot answer, the query fails (:class:`RemoteStorageError`) rather
than silently using the buffer alone: a rate over an hour computed from ten minutes of data
would fire or resolve alerts and scale workloads on a fraction of the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from promql.errors import EvaluationError
from tsdb import Matcher, Series

__all__ = ["BufferedQuerier", "RemoteStorageError", "SeriesSource"]


class RemoteStorageError(EvaluationError):
    """The remote store did not answer a selection; the message says which and why."""


class SeriesSource(Protocol):
    """Anything that selects series by matchers over a time range."""

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        """Series matching all matchers with their samples in ``[start_ms, end_ms]``."""
        ...


class BufferedQuerier:
    """The embedded store in front of a remote one; see the module's docstring.

    ``buffered_since`` gives the time (ms) from which the embedded store holds everything that
    was collected, or None while it holds nothing yet."""

    def __init__(
        self,
        local: SeriesSource,
        remote: SeriesSource,
        buffered_since: Callable[[], int | None],
    ) -> None:
        self.local = local
        self.remote = remote
        self._buffered_since = buffered_since

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        """Series matching ``matchers`` in ``[start_ms, end_ms]``, buffered or remote."""
        local = self.local.select(matchers, start_ms, end_ms)
        since = self._buffered_since()
        if since is not None and start_ms >= since:
            return local
        remote = self.remote.select(matchers, start_ms, end_ms)
        return merge(local, remote)


def merge(local: list[Series], remote: list[Series]) -> list[Series]:
    """Per label set: remote samples before the first local one, then the local ones."""
    by_labels = {s.labels: s for s in local}
    out: list[Series] = []
    for series in remote:
        mine = by_labels.pop(series.labels, None)
        if mine is None or len(mine.timestamps) == 0:
            out.append(series)
            continue
        older = series.timestamps < mine.timestamps[0]
        out.append(
            Series(
                series.labels,
                np.concatenate([series.timestamps[older], mine.timestamps]),
                np.concatenate([series.values[older], mine.values]),
            )
        )
    out.extend(by_labels.values())
    return out
