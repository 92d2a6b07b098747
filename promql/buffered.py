"""Queries over a remote Prometheus-compatible store, with the embedded store as a buffer.

With ``storage.query_url`` set, the series that rules, forecasts and the controller read live
in a remote store (fed by remote write); the embedded store holds only what was collected
recently. :class:`BufferedQuerier` answers a selection from the embedded store alone when the
range lies within what it has held since it started buffering (raw samples of this process'
own collection), and otherwise merges, per series: the remote samples before that time, then
the buffered ones. Older buffered samples may be downsampled copies, the remote ones are the
samples as collected. Where the remote copy of a series ends earlier (remote write fell
behind, or the receiver was down), the buffered samples after its last one fill the gap.

Where the remote store cannot answer, the query fails (:class:`RemoteStorageError`) rather
than silently using the buffer alone: a rate over an hour computed from ten minutes of data
would fire or resolve alerts and scale workloads on a fraction of the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from promql.errors import EvaluationError
from promql.selection import Querier
from tsdb import Matcher, Series

__all__ = ["BufferedQuerier", "RemoteStorageError"]


class RemoteStorageError(EvaluationError):
    """The remote store did not answer a selection; the message says which and why."""


class BufferedQuerier:
    """The embedded store in front of a remote one; see the module's docstring.

    ``buffered_since`` gives the time (ms) from which the embedded store holds everything that
    was collected, or None while it holds nothing yet."""

    def __init__(
        self,
        local: Querier,
        remote: Querier,
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
        return merge(local, remote, end_ms + 1 if since is None else since)


def merge(local: list[Series], remote: list[Series], since_ms: int) -> list[Series]:
    """Per label set: remote samples before ``since_ms`` (or up to the remote's last sample,
    if earlier), then the local ones after them."""
    by_labels = {s.labels: s for s in local}
    out: list[Series] = []
    for series in remote:
        mine = by_labels.pop(series.labels, None)
        if mine is None or len(mine.timestamps) == 0:
            out.append(series)
            continue
        if len(series.timestamps) == 0:
            out.append(mine)
            continue
        cut = min(since_ms, int(series.timestamps[-1]) + 1)
        older = series.timestamps < cut
        newer = mine.timestamps >= cut
        out.append(
            Series(
                series.labels,
                np.concatenate([series.timestamps[older], mine.timestamps[newer]]),
                np.concatenate([series.values[older], mine.values[newer]]),
            )
        )
    out.extend(by_labels.values())
    return out
