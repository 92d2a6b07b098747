"""Helpers for raw Kubernetes objects (plain JSON dicts): metadata, times, owners."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from runtime.clock import to_datetime

__all__ = [
    "KubeObject",
    "age",
    "clone",
    "controller_of",
    "labels_of",
    "meta",
    "owner_reference",
    "parse_time",
    "rfc3339",
]

# Raw API objects stay plain JSON dicts: the server stores and serves them verbatim, and
# every resource (built-in or custom) shares the same code paths.
KubeObject = dict[str, Any]


def rfc3339(ts: float) -> str:
    """A Kubernetes timestamp (second precision, UTC, ``Z``)."""
    return to_datetime(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """Unix seconds from a Kubernetes timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def age(ts: float, now: float) -> str:
    """The age column text kubectl shows: ``45s``, ``3m12s``, ``5h``, ``12d``."""
    seconds = int(max(0.0, now - ts))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def clone(obj: KubeObject) -> KubeObject:
    """A deep copy (JSON round trip: faster than ``copy.deepcopy`` for API objects)."""
    result: KubeObject = json.loads(json.dumps(obj))
    return result


def new_uid() -> str:
    """A fresh ``metadata.uid``."""
    return str(uuid.uuid4())


def meta(obj: KubeObject) -> dict[str, Any]:
    """``metadata``, created if missing."""
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def labels_of(obj: KubeObject) -> dict[str, str]:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels if isinstance(labels, dict) else {}


def owner_reference(owner: KubeObject) -> dict[str, Any]:
    """A controller ownerReference pointing at ``owner``."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: KubeObject) -> dict[str, Any] | None:
    """The ownerReference marked ``controller: true``, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None
