"""Structural OpenAPI v3 schemas of CRDs: validation, pruning and defaulting.

Covers what CRD authors use in practice: ``type``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``enum``, ``minimum``/``maximum``, ``minLength``/
``maxLength``, ``minItems``/``maxItems``, ``pattern``, ``format: int-or-string``,
``x-kubernetes-int-or-string``, ``x-kubernetes-preserve-unknown-fields`` and ``default``.
Unknown fields are pruned silently, as the real server does.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["apply_schema"]

Causes = list[tuple[str, str]]


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, int | str) and not isinstance(value, bool)
    expected = schema.get("type")
    if expected is None:
        return True
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def apply_schema(value: Any, schema: dict[str, Any], path: str, causes: Causes) -> Any:
    """``value`` defaulted and pruned by ``schema``; problems are appended to ``causes``."""
    if value is None:
        if schema.get("nullable"):
            return None
        causes.append((path, 'Invalid value: "null": must not be null'))
        return None
    if not _type_ok(value, schema):
        shown = value if not isinstance(value, dict | list) else type(value).__name__
        causes.append(
            (
                path,
                f'Invalid value: "{shown}": {path} in body must be of type '
                f'{schema.get("type")}: "{_json_type(value)}"',
            )
        )
        return value
    _check_scalars(value, schema, path, causes)
    if isinstance(value, dict):
        return _apply_object(value, schema, path, causes)
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            return [apply_schema(v, items, f"{path}[{i}]", causes) for i, v in enumerate(value)]
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _check_scalars(value: Any, schema: dict[str, Any], path: str, causes: Causes) -> None:
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(f'"{v}"' for v in schema["enum"])
        causes.append((path, f'Unsupported value: "{value}": supported values: {allowed}'))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            causes.append(
                (
                    path,
                    f"Invalid value: {value}: {path} in body should be greater "
                    f"than or equal to {schema['minimum']}",
                )
            )
        if "maximum" in schema and value > schema["maximum"]:
            causes.append(
                (
                    path,
                    f"Invalid value: {value}: {path} in body should be less than "
                    f"or equal to {schema['maximum']}",
                )
            )
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(
                (
                    path,
                    f'Invalid value: "{value}": {path} in body should be at '
                    f"least {schema['minLength']} chars long",
                )
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append((path, f"Too long: may not be longer than {schema['maxLength']}"))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            causes.append(
                (
                    path,
                    f'Invalid value: "{value}": {path} in body should match '
                    f"'{schema['pattern']}'",
                )
            )
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(
                (
                    path,
                    f"Invalid value: {len(value)}: {path} in body should have at "
                    f"least {schema['minItems']} items",
                )
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(
                (path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items")
            )


def _apply_object(
    value: dict[str, Any], schema: dict[str, Any], path: str, causes: Causes
) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    out: dict[str, Any] = {}
    for key, child in value.items():
        child_path = f"{path}.{key}" if path else key
        if key in properties:
            out[key] = apply_schema(child, properties[key], child_path, causes)
        elif isinstance(additional, dict):
            out[key] = apply_schema(child, additional, child_path, causes)
        elif preserve or additional is True or (not properties and schema.get("type") is None):
            out[key] = child
    for key, child_schema in properties.items():
        if key not in out and isinstance(child_schema, dict) and "default" in child_schema:
            out[key] = apply_schema(
                child_schema["default"], child_schema, f"{path}.{key}" if path else key, causes
            )
    for key in schema.get("required") or []:
        if key not in out:
            causes.append((f"{path}.{key}" if path else key, "Required value"))
    return out
