"""Which price applies to a node: an override by label, else spot, else on-demand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from autoscaler.cost.settings import CostSettings

HOURS_PER_MONTH = 730.0  # OpenCost's month, so figures compare with OpenCost's
GIB = float(2**30)


@dataclass(frozen=True)
class NodePrices:
    """Prices per unit-hour of one node's resources."""

    cpu_core_hour: float
    memory_gib_hour: float
    gpu_hour: float


def default_prices(settings: CostSettings) -> NodePrices:
    """On-demand prices, for nodes with no labels known."""
    return NodePrices(settings.cpu_core_hour, settings.memory_gib_hour, settings.gpu_hour)


def is_spot(labels: Mapping[str, str], settings: CostSettings) -> bool:
    """Whether any of the configured spot labels is on the node."""
    for pair in settings.spot_labels:
        key, _, value = pair.partition("=")
        if labels.get(key) == value:
            return True
    return False


def node_prices(labels: Mapping[str, str], settings: CostSettings) -> NodePrices:
    """The prices of a node with these labels."""
    if is_spot(labels, settings):
        base = NodePrices(
            settings.spot_cpu_core_hour, settings.spot_memory_gib_hour, settings.gpu_hour
        )
    else:
        base = default_prices(settings)
    for override in settings.node_overrides:
        if all(labels.get(k) == v for k, v in override.match.items()):
            return NodePrices(
                _pick(override.cpu_core_hour, base.cpu_core_hour),
                _pick(override.memory_gib_hour, base.memory_gib_hour),
                _pick(override.gpu_hour, base.gpu_hour),
            )
    return base


def storage_gib_hour(settings: CostSettings) -> float:
    """Storage price per GiB-hour."""
    return settings.storage_gib_month / HOURS_PER_MONTH


def _pick(value: float | None, fallback: float) -> float:
    return fallback if value is None else value
