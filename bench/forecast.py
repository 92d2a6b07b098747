"""Forecasting cost: ``python -m bench.forecast DIR``.

For each forecaster: time to fit on up to 8 days of 15 s history (and per day of that history)
and time per prediction, measured on the traces in DIR; then what 1,000 workloads cost per
re-fit round and per decision round (15 s), one model per workload, and for one global
quantile model over normalised series.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from autoscaler.backtest.trace import load_trace, sample_and_hold, trace_files
from autoscaler.forecast.base import Horizon, Series
from autoscaler.forecast.quantile_gbm import QuantileGbmForecaster
from autoscaler.forecast.registry import forecaster_names, make_forecaster
from autoscaler.forecast.settings import ForecastSettings

STEP = 15.0
WEEK_STEPS = 7 * 5760


def _series(path: Path) -> Series:
    trace = load_trace(path)
    values = sample_and_hold(trace, STEP)[: WEEK_STEPS + 5760]
    return Series(float(trace.times[0]), STEP, values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forecast", description=__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--traces", type=int, default=5, help="how many traces to time on")
    args = parser.parse_args(argv)
    series = [_series(p) for p in trace_files([args.dir])[: args.traces]]
    horizon = Horizon.covering(60, STEP)
    settings = ForecastSettings()
    print(
        f"{'model':<16} {'fit s':>8} {'fit s/day':>10} {'predict ms':>11} {'1000 fits s':>12} "
        f"{'1000 predicts s':>16}"
    )
    for name in forecaster_names():
        fits: list[float] = []
        per_day: list[float] = []
        predicts: list[float] = []
        for s in series:
            model = make_forecaster(name, horizon, settings)
            began = time.perf_counter()
            model.fit(s)
            fits.append(time.perf_counter() - began)
            per_day.append(fits[-1] / (len(s.values) * STEP / 86_400))
            began = time.perf_counter()
            for _ in range(20):
                model.predict(s)
            predicts.append((time.perf_counter() - began) / 20)
        fit, pred = statistics.median(fits), statistics.median(predicts)
        day = statistics.median(per_day)
        print(
            f"{name:<16} {fit:>8.3f} {day:>10.3f} {pred * 1e3:>11.3f} {fit * 1000:>12.1f} "
            f"{pred * 1000:>16.2f}"
        )
    # One global model: rows from every series (normalised by the model's own log ratios),
    # fitted once; prediction is batched across workloads.
    began = time.perf_counter()
    for s in series:
        QuantileGbmForecaster(horizon, settings.quantile, settings.quiet_offset, max_rows=800).fit(
            s
        )
    per_series_fit = (time.perf_counter() - began) / len(series)
    glob = QuantileGbmForecaster(horizon, settings.quantile, settings.quiet_offset, max_rows=4000)
    normalised = [s.values / max(float(np.nanmean(s.values)), 1e-12) for s in series]
    stacked = Series(series[0].start_time, STEP, np.concatenate(normalised))
    began = time.perf_counter()
    glob.fit(stacked)
    global_fit = time.perf_counter() - began
    origins = np.arange(len(stacked.values) - 1000, len(stacked.values), dtype=np.int64)
    began = time.perf_counter()
    glob.backtest(stacked, origins)
    batch = time.perf_counter() - began
    print(
        f"\nglobal quantile_gbm: one fit {global_fit:.2f} s on rows from {len(series)} series; "
        f"1000 workloads predicted in one batch: {batch * 1e3:.0f} ms per decision round "
        f"(small per-series fit: {per_series_fit:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
