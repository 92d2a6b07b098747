"""Forecasting the peak load of a workload over the next horizon.

Every model implements :class:`~autoscaler.forecast.base.Forecaster` and registers by name in
:mod:`autoscaler.forecast.registry`; :mod:`autoscaler.forecast.selection` picks one per
workload by rolling-origin backtest and falls back to reactive scaling when it should.

Why ``conformal`` is the default model
--------------------------------------

``conformal`` (:mod:`autoscaler.forecast.conformal`) keeps ``naive``'s idea, the quantile of
the realised log ratio of peak to load over the last week, but takes it per band of a risk
score learned by least squares from the jumps around the same time yesterday and last week,
the last hour's jumps, the level against the day's mean and the time of day; calm bands get
less headroom, risky ones more, each band's quantile is shrunk toward the pooled one when it
rests on few independent bursts, and a workload whose bands do not beat one quantile for all
on its last day, or whose last day is expected to hold fewer than half an exceedance of the
quantile (too few to tell), is scaled as ``naive`` scales it. Measured with ``python -m
bench.forecast_frontier ../shared/data/traces`` (every shared trace, rolling origin: daily
re-fits on the history up to then), it is never worse than ``naive`` on either figure at any
quantile and startup measured, and has fewer violating steps at a lower cost wherever its
bands may act. At a 60 s startup, for quantiles 0.98, 0.99, 0.997: 0.481 % violating steps
at 1.325 × the oracle's cost, 0.307 % at 1.404 ×, 0.150 % at 1.644 × (``naive``: 0.491 % at
1.342 ×, 0.323 % at 1.428 ×, 0.155 % at 1.672 ×). At 300 s: 0.698 % at 1.463 ×, 0.497 % at
1.651 ×, 0.310 % at 2.008 × (``naive``: 0.831 % at 1.487 ×, 0.551 % at 1.661 ×, 0.314 % at
2.031 ×). Without the shrinkage it cost 0.7 % more than ``naive`` at 0.99 with 300 s: a
week's top band rested on a few bursts. At the default quantile 0.9995 (measured the same
way): 0.077 % at 2.130 × against ``naive``'s 0.078 % at 2.151 × (60 s), 0.211 % at 2.342 ×
against 0.211 % at 2.344 × (300 s, where a day holds 0.14 expected exceedances and the bands
stay off on every workload; with them it had 0.214 %). On the 15 s grid at 0.9995 the bands
act for horizons up to 75 s: an autoscaler's ``horizonSeconds`` of 90 s or more (the default
is 120 s) is scaled as ``naive`` scales it.

Before it, ``naive`` was the default, for these reasons, which still hold for the models
below:

The capacity a replica count buys must cover a high quantile (0.997) of the peak over pod
startup plus one decision. What decides cost at that quantile is the tail of the surprise,
not the centre of the forecast. ``naive`` (the current load times the 0.997 quantile of
realised peak / load over the last week, per workload) measures that tail on a week of
origins. ``quantile_gbm`` is cheaper, but the tail it must be calibrated on is thin:
boosted trees fitted at q = 0.997 see few rows beyond it, and its split-conformal step has
only the held-out day. It under-covers: on eight shared traces at a
60 s startup it had 0.77 % violating steps at 1.61 × the oracle's cost, against 0.21 % at
1.83 × for ``naive``. At equal violations ``naive`` is also cheaper: on the same traces it
gives 0.54 % at 1.53 × with quantile 0.99 and 0.91 % at 1.37 × with 0.98. ``auto``, which
chooses by pinball loss on one held-out day, does no better (0.71 % at 1.64 ×).
Calibrating the learned model on two held-out days instead of one, four times denser, did
not close the gap (0.70 % at 1.60 ×). The learned model stays available by name and
in ``auto``.

Between model evaluations :class:`~autoscaler.forecast.live.LiveForecast` applies the kept
headroom to the live load, capped by the largest load of the last day (``peak_cap_days``):
a ratio learned on bursts from a quiet level must not ask for more than any burst needed
when the level is already high.
"""
