"""Prometheus remote write: the store's write-ahead log sent to a Prometheus-compatible receiver."""
