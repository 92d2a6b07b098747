"""Replay of load traces through scaling policies, scored as ``BENCHMARK.md`` defines.

Layers, lowest first: ``trace`` (reading a trace), ``world`` (the grid, the capacity, the
pods), ``observation`` (what a policy may know), ``reference`` (HPA, oracle, static),
``scoring`` (figures and aggregates), ``policies`` (the registry by name), ``run`` (one
trace through several policies).
"""
