"""Discovery documents: ``/version``, ``/api``, ``/apis`` and the resource lists."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from simulator.resources import ResourceType, TypeRegistry

__all__ = ["api_group", "api_group_list", "api_resource_list", "api_versions", "version_info"]

KUBERNETES_VERSION = "v1.33.0"


def version_info(git_version: str = KUBERNETES_VERSION) -> dict[str, str]:
    """The ``/version`` document (``kubectl version`` reads it)."""
    major, minor = git_version.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"{git_version}+foresight-simulator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: TypeRegistry) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g, vs) for g, vs in registry.groups().items() if g],
    }


def api_group(registry: TypeRegistry, group: str) -> dict[str, Any] | None:
    versions = registry.groups().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


def _hash(t: ResourceType) -> str:
    digest = hashlib.sha256(f"{t.group}/{t.version}/{t.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


_SUB_VERBS = ("get", "patch", "update")


def _subresource_entries(t: ResourceType) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for sub in sorted(t.subresources):
        entry: dict[str, Any] = {
            "name": f"{t.plural}/{sub}",
            "singularName": "",
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": list(_SUB_VERBS),
        }
        if sub == "scale":
            entry.update(group="autoscaling", version="v1", kind="Scale")
        elif sub == "proxy":
            entry.update(
                kind=f"{t.kind}ProxyOptions", verbs=["create", "delete", "get", "patch", "update"]
            )
        out.append(entry)
    return out


def api_resource_list(registry: TypeRegistry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for t in types:
        entry: dict[str, Any] = {
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": list(t.verbs),
            "storageVersionHash": _hash(t),
        }
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        if t.categories:
            entry["categories"] = list(t.categories)
        resources.append(entry)
        resources.extend(_subresource_entries(t))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
