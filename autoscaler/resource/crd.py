"""The CustomResourceDefinition of ``PredictiveAutoscaler``, generated from the model.

Pydantic's JSON schema is turned into a structural OpenAPI v3 schema as the API server wants
it: references inlined, ``Optional`` as a field that may be absent, enums with their type,
quantities as ``x-kubernetes-int-or-string``, no titles. The chart ships the output of
:func:`crd_manifest`; a test keeps the shipped file equal to it.
"""

from __future__ import annotations

from typing import Any

import yaml

from autoscaler.resource.model import (
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    PredictiveAutoscalerSpec,
    PredictiveAutoscalerStatus,
)

__all__ = ["crd_manifest", "crd_yaml", "openapi_schema"]

_PRINTER_COLUMNS = [
    {"name": "Target", "type": "string", "jsonPath": ".spec.targetRef.name"},
    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
    {"name": "Min", "type": "integer", "jsonPath": ".spec.horizontal.minReplicas"},
    {"name": "Max", "type": "integer", "jsonPath": ".spec.horizontal.maxReplicas"},
    {"name": "Current", "type": "integer", "jsonPath": ".status.currentReplicas"},
    {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"},
    {"name": "Forecast", "type": "number", "jsonPath": ".status.forecast.load"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

# Keys of pydantic's JSON schema that OpenAPI v3 in a CRD does not take.
_DROPPED = frozenset({"title", "$defs", "discriminator"})


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if node.get("x-kubernetes-int-or-string"):
        out = {
            k: v
            for k, v in node.items()
            if k not in ("anyOf", "type", "default") and k not in _DROPPED
        }
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        return out
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        # Optional[X] is "X or null": in a CRD that is a field which may be left out.
        others = [s for s in any_of if s.get("type") != "null"]
        if len(others) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return _structural({**others[0], **rest}, defs)
    out = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: _structural(v, defs) for name, v in value.items()}
        elif key == "default" and value is None:
            continue
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema's number form; OpenAPI v3.0 has a bound plus a boolean flag.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = _structural(value, defs)
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "properties" in out:
        out.setdefault("type", "object")
        out.pop("additionalProperties", None)
    return out


def openapi_schema(model: type[Any]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a pydantic model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs)
    return schema


def crd_manifest() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    spec = openapi_schema(PredictiveAutoscalerSpec)
    status = openapi_schema(PredictiveAutoscalerStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "foresight"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["pas"],
                "categories": ["all", "foresight"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "Scales a Deployment or StatefulSet ahead of its "
                            "forecast load: replicas and container requests.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as the YAML file the chart ships."""
    header = "# Generated from autoscaler/resource/model.py by `foresight crd`; do not edit.\n"
    return header + yaml.safe_dump(crd_manifest(), sort_keys=False, width=100)
