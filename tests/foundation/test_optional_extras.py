"""What `foresight run` does not need is an optional extra (the container image leaves it out):
without matplotlib a plot is a clear error naming the extra, and the demo still writes its
figures; without scikit-learn `quantile_gbm` is refused by name and `auto` chooses among the
others."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from autoscaler.cli.main import main
from autoscaler.forecast import quantile_gbm, registry, selection
from autoscaler.forecast.registry import UnknownForecasterError, check_model_name
from tests.support.traces import write_daily_trace


def test_a_plot_without_matplotlib_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # None in sys.modules makes `import matplotlib` raise ImportError, as when not installed.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    trace = write_daily_trace(tmp_path / "daily.csv", days=2)
    argv = ["backtest", "--trace", str(trace), "--policy", "static", "--plot", str(tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "pip install 'foresight[plots]'" in err
    assert "Traceback" not in err


def test_quantile_gbm_without_scikit_learn_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert quantile_gbm.available()
    assert check_model_name("quantile_gbm") == "quantile_gbm"
    monkeypatch.setattr(registry, "available", lambda: False)
    with pytest.raises(UnknownForecasterError, match=r"needs scikit-learn: pip install"):
        check_model_name("quantile_gbm")
    assert check_model_name("naive") == "naive"


def test_auto_chooses_among_every_model_when_scikit_learn_is_there() -> None:
    assert "quantile_gbm" in selection.CANDIDATES
