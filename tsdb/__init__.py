"""The embedded time-series store: series by labels, float samples by time, on disk."""

from tsdb.labels import Labels, Matcher, MatchType, eq, make_labels, name_is
from tsdb.settings import StoreSettings
from tsdb.store import (
    MAINTAIN_EVERY_SECONDS,
    STALE_NAN,
    Series,
    SeriesLimitExceeded,
    Store,
    StoreError,
    StoreLocked,
    StoreStats,
    UnknownSeries,
    is_stale,
    open_store,
    stale_mask,
)

__all__ = [
    "MAINTAIN_EVERY_SECONDS",
    "STALE_NAN",
    "Labels",
    "MatchType",
    "Matcher",
    "Series",
    "SeriesLimitExceeded",
    "Store",
    "StoreError",
    "StoreLocked",
    "StoreSettings",
    "StoreStats",
    "UnknownSeries",
    "eq",
    "is_stale",
    "make_labels",
    "name_is",
    "open_store",
    "stale_mask",
]
