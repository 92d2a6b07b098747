"""Pure resource-usage arithmetic of one container over one time step."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CFS_PERIOD", "ContainerUsage", "memory_working_set", "step_cpu"]

CFS_PERIOD = 0.1  # seconds: the kernel's default CFS enforcement period


@dataclass
class ContainerUsage:
    """Cumulative counters and current gauges of one container (reset on restart)."""

    cpu_seconds: float = 0.0
    cpu_rate: float = 0.0
    memory: float = 0.0
    periods: int = 0
    throttled_periods: int = 0
    throttled_seconds: float = 0.0


def step_cpu(usage: ContainerUsage, demand: float, limit: float | None, dt: float) -> float:
    """Advance the CPU counters by ``dt`` seconds of ``demand`` cores; returns cores used.

    A limit caps usage; the part of demand above it is throttled. Throttled periods are
    counted as the share of CFS periods in which demand exceeded the quota.
    """
    used = demand if limit is None else min(demand, limit)
    usage.cpu_rate = used
    usage.cpu_seconds += used * dt
    if limit is not None and dt > 0:
        periods = int(dt / CFS_PERIOD)
        usage.periods += periods
        if demand > limit > 0:
            # Demand over the quota throttles a share of periods that grows with the excess.
            share = min(1.0, (demand - limit) / limit)
            usage.throttled_periods += int(periods * max(share, 0.05))
            usage.throttled_seconds += (demand - limit) * dt
    return used


def memory_working_set(
    base: float, per_core: float, leak_per_hour: float, cpu_used: float, uptime: float
) -> float:
    """Bytes in use: a base, a part that follows CPU, and a leak that grows with uptime."""
    return base + per_core * cpu_used + leak_per_hour * max(0.0, uptime) / 3600.0
