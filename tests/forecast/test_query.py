"""PromQL's ``forecast()`` is the controller's forecast: same model, grid, quantile and cap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alerts.rules.group import EvalContext
from alerts.rules.manager import RuleManager
from alerts.settings import RuleSettings
from autoscaler.cli.main import main
from autoscaler.controller.forecasting import KeptForecast
from autoscaler.controller.history import GridHistory
from autoscaler.forecast.query import ModelForecaster
from autoscaler.forecast.settings import ForecastSettings
from autoscaler.resource.model import ForecastSpec
from promql import Engine
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

STEP = 60.0  # the controller's default history step
MIN = 60_000
HORIZON = 1800
T0 = 1_700_000_000_000  # a multiple of the step


def _load(minutes: int, offset_ms: int = 0, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A day-shaped load with bursts, one sample a minute (``offset_ms`` past the grid)."""
    t = np.arange(minutes)
    rng = np.random.default_rng(seed)
    values = 100 + 40 * np.sin(2 * np.pi * t / 1440) + rng.gamma(2.0, 6.0, minutes)
    values[rng.random(minutes) < 0.02] *= 1.8
    return T0 + t.astype(np.int64) * MIN + offset_ms, values


def _store(ts: np.ndarray, values: np.ndarray) -> Store:
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    for t, v in zip(ts.tolist(), values.tolist(), strict=True):
        store.append({"__name__": "load", "app": "web"}, t, v)
    return store


def _controller_peak(
    ts: np.ndarray, values: np.ndarray, at_ms: int, window_ms: int, settings: ForecastSettings
) -> float:
    """What the controller forecasts from the same samples: its grid and its kept forecast."""
    inside = (ts > at_ms - window_ms) & (ts <= at_ms)
    history = GridHistory(STEP, window_ms / 1000)
    for t, v in zip(ts[inside].tolist(), values[inside].tolist(), strict=True):
        history.observe(t / 1000, v)
    spec = ForecastSpec(horizon_seconds=HORIZON, quantile=settings.quantile, model=settings.model)
    series = history.series()
    assert series is not None
    return KeptForecast(spec, settings, STEP).peak(series, float(values[inside][-1]))


@pytest.mark.parametrize(
    ("model", "window", "offset_ms"),
    [
        ("naive", "3h", 0),
        ("naive", "3h", 17_000),  # samples off the grid land in the cells the controller uses
        ("seasonal_naive", "2d", 0),  # long enough that the configured model is used
        ("holt_winters", "2d", 5_000),
        ("conformal", "2d", 0),
    ],
)
def test_forecast_in_a_query_is_the_controllers_forecast(
    model: str, window: str, offset_ms: int
) -> None:
    window_ms = {"3h": 3 * 60, "2d": 2 * 1440}[window] * MIN
    ts, values = _load(window_ms // MIN + 20, offset_ms)
    settings = ForecastSettings(model=model, quantile=0.99)
    store = _store(ts, values)
    try:
        engine = Engine(store, forecaster=ModelForecaster(settings, STEP))
        end = int(ts[-1]) - offset_ms
        start = end - 10 * MIN
        result = engine.range(f"forecast(load[{window}], {HORIZON})", start, end, 5 * MIN)
        got = result.series[0].values.tolist()
        want = [
            _controller_peak(ts, values, at, window_ms, settings)
            for at in (start, start + 5 * MIN, end)
        ]
        assert got == pytest.approx(want, rel=1e-12)
        # A forecast of the peak at a high quantile: above the load now.
        assert got[-1] > values[-1]
    finally:
        store.close()


def test_forecast_in_a_rule_is_the_controllers_forecast(tmp_path: Path) -> None:
    ts, values = _load(4 * 60)
    store = _store(ts, values)
    rules = tmp_path / "rules.yml"
    # A group interval other than the default subquery step: the manager builds another
    # engine for it, which must keep the forecaster.
    rules.write_text(
        "groups:\n- name: capacity\n  interval: 30s\n  rules:\n"
        f"  - record: load:forecast_peak\n    expr: forecast(load[3h], {HORIZON})\n"
    )
    settings = ForecastSettings()
    engine = Engine(store, forecaster=ModelForecaster(settings, STEP))
    manager = RuleManager(
        RuleSettings(state_dir=tmp_path, files=[rules], builtin=False), EvalContext(engine, store)
    )
    try:
        assert manager.reload()
        at = int(ts[-1])
        manager.evaluate(manager.groups[0], at)
        assert manager.groups[0].status[0].health == "ok"
        recorded = Engine(store).instant("load:forecast_peak", at).series[0].values[0]
        assert recorded == _controller_peak(ts, values, at, 3 * 60 * MIN, settings)
    finally:
        store.close()


def test_an_unknown_model_fails_with_the_settings() -> None:
    with pytest.raises(
        ValueError, match="unknown forecast model 'prophet'; valid: conformal, holt_winters, "
    ):
        ForecastSettings(model="prophet")


def test_cli_promql_test_evaluates_forecast_with_the_configured_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = tmp_path / "forecast.test"
    # A constant load forecasts itself; a burst in the window is expected again.
    case.write_text(
        "load 1m\n  flat 100x60\n  bursty 100x20 250 100x39\n\n"
        "eval instant at 60m forecast(flat[1h], 1800)\n  {} 100\n\n"
        "eval instant at 60m forecast(bursty[1h], 1800)\n  {} 250\n"
    )
    assert main(["promql", "test", str(case)]) == 0
    assert capsys.readouterr().out.endswith("2 passed, 0 failed, 0 skipped\n")
    monkeypatch.setenv("FORESIGHT_FORECAST__MODEL", "prophet")
    assert main(["promql", "test", str(case)]) == 2
    err = capsys.readouterr().err
    assert "FORESIGHT_FORECAST__MODEL" in err and "unknown forecast model 'prophet'" in err
