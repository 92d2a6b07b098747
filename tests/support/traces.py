"""Load traces the tests make themselves, in the ``timestamp,value`` CSV format of real ones,
so that tests of foresight's own behaviour run without the external traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["DAY", "write_daily_trace"]

DAY = 86_400.0
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def write_daily_trace(path: Path, days: float, step_seconds: float = 300.0, seed: int = 1) -> Path:
    """A daily cycle (low at night, peak in the afternoon) with gamma noise, ``days`` long,
    one sample every ``step_seconds``; a few rows left out, as real traces have gaps."""
    rng = np.random.default_rng(seed)
    n = int(days * DAY / step_seconds)
    times = START + np.arange(n) * step_seconds
    phase = 2 * np.pi * (times - START) / DAY
    values = 40 - 30 * np.cos(phase - np.pi / 6) + rng.gamma(2.0, 2.0, n)
    keep = rng.random(n) > 0.01
    rows = (f"{t:.0f},{v:.3f}" for t, v in zip(times[keep], values[keep], strict=True))
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path
