"""Shared helpers: tiny hand-built worlds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from autoscaler.backtest.world import World, WorldConfig


def _tiny_world(demand: list[float], startup: float, capacity: float = 1.0) -> World:
    return World(
        name="tiny",
        config=WorldConfig(startup_seconds=startup, warmup_seconds=0),
        start_time=1_000_000.0,
        demand=np.asarray(demand, dtype=np.float64),
        capacity=capacity,
        warmup_steps=0,
    )


TinyWorld = Callable[..., World]


@pytest.fixture(scope="session")
def tiny_world() -> TinyWorld:
    """Builds a world with no warm-up and a given capacity per replica."""
    return _tiny_world
