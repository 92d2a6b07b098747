"""Replay of load traces through scaling policies, scored as ``docs/architecture.md`` defines
(section "The backtest's world model").

Layers, lowest first: ``trace`` (reading a trace), ``world`` (the grid, the capacity, the
pods), ``observation`` (what a policy may know), ``reference`` (HPA, oracle, static),
``scoring`` (figures and aggregates), ``policies`` (the registry by name), ``run`` (one
trace through several policies).
"""
