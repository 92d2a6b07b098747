"""Forecasting the peak load of a workload over the next horizon.

Every model implements :class:`~autoscaler.forecast.base.Forecaster` and registers by name in
:mod:`autoscaler.forecast.registry`; :mod:`autoscaler.forecast.selection` picks one per
workload by rolling-origin backtest and falls back to reactive scaling when it should.
"""
