"""The ``PredictiveAutoscaler`` resource as pydantic models: the one source of the CRD schema.

Field names are the camelCase of the Kubernetes API (through aliases); the CRD's OpenAPI
schema is generated from these classes (:mod:`autoscaler.resource.crd`), so the controller
and the API server validate the same thing. Cross-field rules are written twice on purpose:
as CEL for the API server (``x-kubernetes-validations``) and as validators here, for API
servers without CEL and for the simulator.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from autoscaler.forecast.registry import check_model_name, model_names
from autoscaler.forecast.settings import ForecastSettings
from runtime.quantity import parse_quantity

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Condition",
    "ContainerPolicy",
    "ContainerRecommendation",
    "ForecastSpec",
    "ForecastStatus",
    "HorizontalSpec",
    "LastDecision",
    "MetricSpec",
    "MetricType",
    "Mode",
    "PredictiveAutoscalerSpec",
    "PredictiveAutoscalerStatus",
    "Quantity",
    "TargetRef",
    "UpdateMode",
    "VerticalSpec",
]

GROUP = "foresight.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "PredictiveAutoscaler"
PLURAL = "predictiveautoscalers"


def _quantity(value: Any) -> Any:
    try:
        parse_quantity(value)
    except ValueError as e:
        raise ValueError(str(e)) from None
    return value


# A Kubernetes quantity ("250m", "1Gi", 2): validated here, int-or-string in the CRD.
Quantity = Annotated[
    int | str,
    Field(json_schema_extra={"x-kubernetes-int-or-string": True}),
]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Mode(enum.StrEnum):
    """What the controller may do."""

    OFF = "Off"
    RECOMMEND = "Recommend"
    AUTO = "Auto"


class MetricType(enum.StrEnum):
    """Where the load comes from."""

    CPU = "CPU"
    MEMORY = "Memory"
    QUERY = "Query"


class UpdateMode(enum.StrEnum):
    """How container requests are changed."""

    IN_PLACE = "InPlace"
    IN_PLACE_OR_RECREATE = "InPlaceOrRecreate"
    RECREATE = "Recreate"
    OFF = "Off"


class TargetRef(_Model):
    """The scaled workload, in the autoscaler's namespace."""

    api_version: Literal["apps/v1"] = Field("apps/v1", description="API version of the target.")
    kind: Literal["Deployment", "StatefulSet"] = Field(description="Kind of the target.")
    name: str = Field(min_length=1, max_length=253, description="Name of the target.")


class MetricSpec(_Model):
    """The load the replica count follows."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.type != 'Query' || "
                    "(has(self.query) && has(self.targetPerReplica))",
                    "message": "type Query needs query and targetPerReplica",
                }
            ]
        }
    )

    type: MetricType = Field(
        MetricType.CPU,
        description="CPU or Memory: usage of the pods' requests; Query: a PromQL expression.",
    )
    target_utilization: int = Field(
        80,
        ge=1,
        le=100,
        description="For CPU and Memory: percent of each pod's request the forecast peak may use.",
    )
    query: str | None = Field(
        None,
        min_length=1,
        description="For Query: PromQL giving the workload's total load (one series), e.g. "
        "requests per second.",
    )
    target_per_replica: float | None = Field(
        None, gt=0, description="For Query: load one replica serves at its target."
    )

    @model_validator(mode="after")
    def _query_complete(self) -> MetricSpec:
        if self.type is MetricType.QUERY and (
            self.query is None or self.target_per_replica is None
        ):
            raise ValueError("type Query needs query and targetPerReplica")
        return self


class HorizontalSpec(_Model):
    """Replica scaling."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas must be <= maxReplicas",
                }
            ]
        }
    )

    min_replicas: int = Field(1, ge=1, le=10_000, description="Fewest replicas ever set.")
    max_replicas: int = Field(ge=1, le=10_000, description="Most replicas ever set.")
    metric: MetricSpec = Field(default_factory=MetricSpec, description="The load.")
    scale_down_stabilization_seconds: int = Field(
        300,
        ge=0,
        le=3600,
        description="Scale down only to the highest recommendation of this window.",
    )
    max_step_up: int | None = Field(None, ge=1, description="Most replicas added at once.")
    max_step_down: int | None = Field(None, ge=1, description="Most replicas removed at once.")

    @model_validator(mode="after")
    def _bounds(self) -> HorizontalSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must be <= maxReplicas ({self.max_replicas})"
            )
        return self


class ResourceBounds(_Model):
    """CPU and memory quantities."""

    cpu: Quantity | None = Field(None, description="CPU, e.g. 100m or 2.")
    memory: Quantity | None = Field(None, description="Memory, e.g. 256Mi.")

    _check = field_validator("cpu", "memory")(_quantity)

    def value(self, resource: str) -> float | None:
        """The bound in cores or bytes, or None."""
        raw = self.cpu if resource == "cpu" else self.memory
        return None if raw is None else parse_quantity(raw)


class ContainerPolicy(_Model):
    """Bounds for one container (or every container: ``*``)."""

    container_name: str = Field("*", min_length=1, description="Container name, or * for all.")
    mode: Literal["Auto", "Off"] = Field("Auto", description="Off leaves this container alone.")
    min_allowed: ResourceBounds = Field(
        default_factory=ResourceBounds, description="Smallest requests set."
    )
    max_allowed: ResourceBounds = Field(
        default_factory=ResourceBounds, description="Largest requests set."
    )


def _both_resources() -> list[Literal["cpu", "memory"]]:
    return ["cpu", "memory"]


class VerticalSpec(_Model):
    """Container request sizing."""

    update_mode: UpdateMode = Field(
        UpdateMode.IN_PLACE,
        description="InPlace: resize running pods (pods/resize), never recreate them; "
        "InPlaceOrRecreate: resize in place, patch the pod template instead where pods/resize "
        "is not served, a resize stays Infeasible, or a memory limit must fall on a container "
        "that cannot restart for it; Recreate: patch the pod template (rolling restart, "
        "rate-limited); Off: recommend only.",
    )
    controlled_resources: list[Literal["cpu", "memory"]] = Field(
        default_factory=_both_resources,
        min_length=1,
        description="Resources whose requests are sized.",
    )
    container_policies: list[ContainerPolicy] = Field(
        default_factory=list, description="Per-container bounds; the first match wins."
    )

    def policy_for(self, container: str) -> ContainerPolicy:
        """The policy of ``container``: its own, else ``*``, else the defaults."""
        for policy in self.container_policies:
            if policy.container_name == container:
                return policy
        for policy in self.container_policies:
            if policy.container_name == "*":
                return policy
        return ContainerPolicy()


def _model_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = model_names()


# One place says which model and quantile are the default: the forecast settings' own.
_DEFAULTS = ForecastSettings()


class ForecastSpec(_Model):
    """How far ahead and how surely."""

    horizon_seconds: int = Field(
        120,
        ge=15,
        le=86_400,
        description="Look-ahead: at least pod startup plus one decision interval.",
    )
    quantile: float = Field(
        _DEFAULTS.quantile,
        ge=0.5,
        le=0.9999,
        description="Quantile of the peak load capacity covers.",
    )
    model: str = Field(
        _DEFAULTS.model,
        description="Forecast model, or auto to choose per workload by backtest.",
        json_schema_extra=_model_enum,
    )

    _known_model = field_validator("model")(check_model_name)


class PredictiveAutoscalerSpec(_Model):
    """What to scale, how, and how far ahead."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.horizontal) || has(self.vertical)",
                    "message": "set horizontal, vertical or both",
                }
            ]
        }
    )

    target_ref: TargetRef = Field(description="The workload to scale.")
    mode: Mode = Field(
        Mode.AUTO, description="Off: nothing; Recommend: status and metrics only; Auto: act."
    )
    horizontal: HorizontalSpec | None = Field(None, description="Replica scaling.")
    vertical: VerticalSpec | None = Field(None, description="Container request sizing.")
    forecast: ForecastSpec = Field(default_factory=ForecastSpec, description="Forecast settings.")

    @model_validator(mode="after")
    def _something_to_do(self) -> PredictiveAutoscalerSpec:
        if self.horizontal is None and self.vertical is None:
            raise ValueError("set horizontal, vertical or both")
        return self


class Condition(_Model):
    """A Kubernetes status condition."""

    type: str = Field(
        description="ForecastReady, AbleToScale, ScalingLimited, ConflictingAutoscaler, "
        "AbleToResize (vertical: InPlaceResizeUnavailable, ResizeInfeasible, ResizeDeferred, "
        "ResizeInProgress, RecreateFallback, MemoryLimitKept, Resized)"
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field("", description="One CamelCase word.")
    message: str = Field("", description="For people.")
    last_transition_time: str | None = Field(None, description="RFC 3339.")


class ForecastStatus(_Model):
    """The forecast the last decision used."""

    load: float = Field(description="Forecast peak load over the horizon.")
    quantile: float = Field(description="Its quantile.")
    horizon_seconds: int = Field(description="Its horizon.")
    model: str = Field(description="The model that made it.")
    time: str = Field(description="When, RFC 3339.")


class ContainerRecommendation(_Model):
    """Recommended requests of one container."""

    container_name: str = Field(description="Container.")
    target: ResourceBounds = Field(description="Recommended requests.")
    lower_bound: ResourceBounds = Field(
        default_factory=ResourceBounds, description="Below this, resize."
    )
    upper_bound: ResourceBounds = Field(
        default_factory=ResourceBounds, description="Above this, resize."
    )
    reason: str = Field("", description="Why the target is what it is.")


class LastDecision(_Model):
    """The latest scaling decision that changed something, or held on purpose."""

    time: str = Field(description="RFC 3339.")
    direction: Literal["up", "down", "none"] = Field(description="up, down or none.")
    from_replicas: int = Field(description="Replicas before.")
    to_replicas: int = Field(description="Replicas after.")
    reason: str = Field(description="The rule that decided, e.g. forecast, max_replicas.")
    message: str = Field("", description="For people.")


# A status field left None is not written, and a merge patch of ``/status`` keeps what it held.
class PredictiveAutoscalerStatus(_Model):
    """What the controller saw and did."""

    observed_generation: int | None = Field(None, description="Spec generation last acted on.")
    current_replicas: int | None = Field(None, description="Replicas of the target now.")
    desired_replicas: int | None = Field(None, description="Replicas the controller wants.")
    load: float | None = Field(None, description="Load now, in the metric's unit.")
    forecast: ForecastStatus | None = Field(None, description="The forecast in use.")
    recommendations: list[ContainerRecommendation] | None = Field(
        None, description="Per-container requests."
    )
    last_decision: LastDecision | None = Field(None, description="The latest decision.")
    last_scale_time: str | None = Field(None, description="When replicas last changed.")
    conditions: list[Condition] = Field(default_factory=list, description="Conditions.")

    def to_api(self) -> dict[str, Any]:
        """The status as the API takes it: camelCase field names, no field without a value."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
