"""Reading ``PredictiveAutoscaler`` objects from the API into the model.

An object the model rejects is not an exception for the controller: it becomes an
:class:`InvalidAutoscaler` whose message names the field (``spec.horizontal.maxReplicas``),
to be written to its status and skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from autoscaler.resource.model import PredictiveAutoscalerSpec

__all__ = ["Autoscaler", "InvalidAutoscaler", "read_autoscaler", "validation_message"]


@dataclass(frozen=True)
class Autoscaler:
    """A valid PredictiveAutoscaler."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: PredictiveAutoscalerSpec
    status: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


@dataclass(frozen=True)
class InvalidAutoscaler:
    """An object that cannot be acted on, and why."""

    namespace: str
    name: str
    uid: str
    generation: int
    message: str

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


def validation_message(error: ValidationError, prefix: str = "spec") -> str:
    """Pydantic's errors as ``spec.field.sub: message; ...`` (API field names)."""
    parts = []
    for item in error.errors():
        path = ".".join([prefix, *(str(p) for p in item["loc"])])
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{path}: {message}")
    return "; ".join(parts)


def read_autoscaler(obj: Mapping[str, Any]) -> Autoscaler | InvalidAutoscaler:
    """The object as the controller sees it."""
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    uid, generation = str(meta.get("uid", "")), int(meta.get("generation") or 0)
    try:
        spec = PredictiveAutoscalerSpec.model_validate(obj.get("spec") or {})
    except ValidationError as e:
        return InvalidAutoscaler(namespace, name, uid, generation, validation_message(e))
    return Autoscaler(namespace, name, uid, generation, spec, obj.get("status") or {})
