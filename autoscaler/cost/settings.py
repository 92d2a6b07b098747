"""Prices of the cost model: OpenCost's defaults (GCP us-central1), overridable per node."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

# OpenCost's default custom pricing, per unit-hour except storage (per GiB-month).
DEFAULT_CPU_CORE_HOUR = 0.031611
DEFAULT_MEMORY_GIB_HOUR = 0.004237
DEFAULT_GPU_HOUR = 0.95
DEFAULT_STORAGE_GIB_MONTH = 0.04
DEFAULT_SPOT_CPU_CORE_HOUR = 0.006655
DEFAULT_SPOT_MEMORY_GIB_HOUR = 0.000892

# Labels that cloud providers and provisioners put on spot/preemptible nodes.
DEFAULT_SPOT_LABELS = (
    "karpenter.sh/capacity-type=spot",
    "eks.amazonaws.com/capacityType=SPOT",
    "cloud.google.com/gke-spot=true",
    "cloud.google.com/gke-preemptible=true",
    "kubernetes.azure.com/scalesetpriority=spot",
    "node.kubernetes.io/lifecycle=spot",
)


class NodePriceOverride(BaseModel):
    """Prices for the nodes whose labels all equal ``match``; unset prices are inherited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: dict[str, str] = Field(
        min_length=1,
        description="Node labels that must all be equal, e.g. "
        "`{node.kubernetes.io/instance-type: m5.large}`.",
    )
    cpu_core_hour: float | None = Field(None, ge=0, description="Price of one core for an hour.")
    memory_gib_hour: float | None = Field(
        None, ge=0, description="Price of one GiB of memory for an hour."
    )
    gpu_hour: float | None = Field(None, ge=0, description="Price of one GPU for an hour.")


class CostSettings(BaseModel):
    """Prices of node resources and storage, in `currency`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field("USD", description="ISO 4217 code of every price, e.g. `EUR`.")
    cpu_core_hour: float = Field(
        DEFAULT_CPU_CORE_HOUR, ge=0, description="On-demand price of one core for an hour."
    )
    memory_gib_hour: float = Field(
        DEFAULT_MEMORY_GIB_HOUR,
        ge=0,
        description="On-demand price of one GiB of memory for an hour.",
    )
    gpu_hour: float = Field(DEFAULT_GPU_HOUR, ge=0, description="Price of one GPU for an hour.")
    storage_gib_month: float = Field(
        DEFAULT_STORAGE_GIB_MONTH,
        ge=0,
        description="Price of one GiB of requested ephemeral storage for a month (730 hours).",
    )
    spot_cpu_core_hour: float = Field(
        DEFAULT_SPOT_CPU_CORE_HOUR, ge=0, description="Price of one spot core for an hour."
    )
    spot_memory_gib_hour: float = Field(
        DEFAULT_SPOT_MEMORY_GIB_HOUR,
        ge=0,
        description="Price of one GiB of spot memory for an hour.",
    )
    spot_labels: tuple[str, ...] = Field(
        DEFAULT_SPOT_LABELS,
        description="`key=value` node labels that mark a spot node (any one suffices).",
    )
    node_overrides: tuple[NodePriceOverride, ...] = Field(
        (),
        description="Per-node prices by label (instance type, node pool...); the first match "
        "wins over the spot and on-demand prices.",
    )

    @field_validator("currency")
    @classmethod
    def _iso_code(cls, value: str) -> str:
        if len(value) != 3 or not value.isascii() or not value.isupper():
            raise ValueError(f"currency {value!r} must be an ISO 4217 code such as USD or EUR")
        return value

    @field_validator("spot_labels")
    @classmethod
    def _pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pair in value:
            key, sep, _ = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"spot label {pair!r} must be key=value")
        return value
