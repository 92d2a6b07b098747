"""OpenAPI v3 documents, enough for kubectl to know the server validates fields itself.

kubectl reads ``/openapi/v3`` and, per group/version, looks for the PATCH operation of a
kind with a ``fieldValidation`` query parameter; when it finds one it leaves validation to
the server instead of downloading schemas. Custom resources carry their CRD schema.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from simulator.resources import ResourceType, TypeRegistry

__all__ = ["openapi_v3_group", "openapi_v3_index"]

_QUERY_PARAMS = ("fieldValidation", "fieldManager", "dryRun", "force")


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _operations(t: ResourceType) -> dict[str, Any]:
    gvk = {"group": t.group, "version": t.version, "kind": t.kind}
    params = [
        {"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for p in _QUERY_PARAMS
    ]
    ref = {"$ref": f"#/components/schemas/{_schema_name(t)}"}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    return {
        "get": {
            "x-kubernetes-group-version-kind": gvk,
            "x-kubernetes-action": "get",
            "responses": ok,
        },
        "put": {
            "x-kubernetes-group-version-kind": gvk,
            "x-kubernetes-action": "put",
            "parameters": params,
            "responses": ok,
        },
        "patch": {
            "x-kubernetes-group-version-kind": gvk,
            "x-kubernetes-action": "patch",
            "parameters": params,
            "responses": ok,
        },
        "delete": {
            "x-kubernetes-group-version-kind": gvk,
            "x-kubernetes-action": "delete",
            "responses": ok,
        },
    }


def _schema_name(t: ResourceType) -> str:
    return (
        ".".join(reversed(t.group.split("."))) + f".{t.version}.{t.kind}"
        if t.group
        else (f"io.k8s.api.core.{t.version}.{t.kind}")
    )


def openapi_v3_group(registry: TypeRegistry, segments: list[str]) -> dict[str, Any] | None:
    """The document of one group/version (``segments`` after ``/openapi/v3/``)."""
    if segments[:1] == ["api"] and len(segments) == 2:
        group, version = "", segments[1]
    elif segments[:1] == ["apis"] and len(segments) == 3:
        group, version = segments[1], segments[2]
    else:
        return None
    types = registry.in_group_version(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    prefix = "/" + _gv_path(group, version)
    for t in types:
        scope = (
            f"{prefix}/namespaces/{{namespace}}/{t.plural}"
            if t.namespaced
            else (f"{prefix}/{t.plural}")
        )
        paths[f"{scope}/{{name}}"] = _operations(t)
        schema = (
            dict(t.schema)
            if t.schema
            else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        )
        schema["x-kubernetes-group-version-kind"] = [
            {"group": t.group, "version": t.version, "kind": t.kind}
        ]
        schemas[_schema_name(t)] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def openapi_v3_index(registry: TypeRegistry) -> dict[str, Any]:
    """``/openapi/v3``: one entry per group/version, with a hash that changes with it."""
    paths = {}
    for group, versions in registry.groups().items():
        for version in versions:
            doc = openapi_v3_group(registry, _gv_path(group, version).split("/"))
            digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]
            paths[_gv_path(group, version)] = {
                "serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}?hash={digest}"
            }
    return {"paths": paths}
