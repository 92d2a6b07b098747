"""Benchmarks that print fixed tables (run with ``python -m bench.NAME``)."""
