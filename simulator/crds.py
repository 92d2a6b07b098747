"""CustomResourceDefinitions: validation, and the resource types a CRD serves."""

from __future__ import annotations

from typing import Any

from simulator.admission import Causes
from simulator.errors import ApiError
from simulator.objects import KubeObject
from simulator.resources import PrinterColumn, ResourceType, ScalePaths

__all__ = ["crd_conditions", "types_of_crd", "validate_crd"]


def validate_crd(crd: KubeObject) -> None:
    """422 Invalid unless the CRD names, versions and schemas are usable."""
    causes: Causes = []
    spec = crd.get("spec")
    name = crd.get("metadata", {}).get("name", "")
    if not isinstance(spec, dict):
        raise ApiError.invalid(
            "CustomResourceDefinition", "apiextensions.k8s.io", name, [("spec", "Required value")]
        )
    group, names = spec.get("group"), spec.get("names") or {}
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append((f"spec.names.{field}", "Required value"))
    if not group:
        causes.append(("spec.group", "Required value"))
    elif "." not in str(group):
        causes.append(
            ("spec.group", f'Invalid value: "{group}": should be a domain with at least one dot')
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            (
                "spec.scope",
                f'Unsupported value: "{spec.get("scope")}": supported '
                'values: "Cluster", "Namespaced"',
            )
        )
    if names.get("plural") and group and name != f"{names['plural']}.{group}":
        causes.append(
            ("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group')
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        causes.append(("spec.versions", "Required value"))
    else:
        storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
        if len(storage) != 1:
            causes.append(
                (
                    "spec.versions",
                    "Invalid value: must have exactly one version marked as storage version",
                )
            )
        for i, v in enumerate(versions):
            if not isinstance(v, dict) or not v.get("name"):
                causes.append((f"spec.versions[{i}].name", "Required value"))
                continue
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            if not isinstance(schema, dict):
                causes.append(
                    (
                        f"spec.versions[{i}].schema.openAPIV3Schema",
                        "Required value: schemas are required",
                    )
                )
            elif schema.get("type") != "object":
                causes.append(
                    (
                        f"spec.versions[{i}].schema.openAPIV3Schema.type",
                        'Required value: must be "object" at the root',
                    )
                )
    if causes:
        raise ApiError.invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)


def types_of_crd(crd: KubeObject) -> list[ResourceType]:
    """One ResourceType per served version of the CRD."""
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for v in spec["versions"]:
        if not v.get("served", True):
            continue
        subresources = v.get("subresources") or {}
        sub = set()
        scale = None
        if "status" in subresources:
            sub.add("status")
        if isinstance(subresources.get("scale"), dict):
            sub.add("scale")
            s = subresources["scale"]
            scale = ScalePaths(
                s.get("specReplicasPath", ".spec.replicas"),
                s.get("statusReplicasPath", ".status.replicas"),
                s.get("labelSelectorPath"),
            )
        columns = tuple(
            PrinterColumn(
                name=c["name"],
                type=c.get("type", "string"),
                json_path=c["jsonPath"],
                description=c.get("description", ""),
                priority=int(c.get("priority", 0)),
                format=c.get("format", ""),
            )
            for c in v.get("additionalPrinterColumns") or []
            if isinstance(c, dict) and "name" in c and "jsonPath" in c
        )
        schema: dict[str, Any] | None = (v.get("schema") or {}).get("openAPIV3Schema")
        out.append(
            ResourceType(
                group=spec["group"],
                version=v["name"],
                kind=names["kind"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec["scope"] == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(sub),
                schema=schema,
                printer_columns=columns,
                scale=scale,
                custom=True,
            )
        )
    return out


def crd_conditions(crd: KubeObject, now_text: str) -> dict[str, Any]:
    """The status an accepted CRD gets: names accepted, established."""
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    return {
        "acceptedNames": names,
        "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now_text,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now_text,
            },
        ],
    }
