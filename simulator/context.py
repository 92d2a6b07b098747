"""What controllers share during one simulation step: the API, the time, and indexes."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from simulator.api_core import ApiCore
from simulator.errors import ApiError
from simulator.objects import KubeObject, clone, owner_reference, rfc3339
from simulator.resources import ResourceType

__all__ = ["Kinds", "StepContext", "Writer"]

log = logging.getLogger("simulator.controllers")

# Annotations the simulator puts on the pod templates of scenario workloads.
WORKLOAD_ANNOTATION = "sim.foresight.dev/workload"


@dataclass(frozen=True)
class Kinds:
    """The built-in resource types controllers touch."""

    pod: ResourceType
    node: ResourceType
    event: ResourceType
    deployment: ResourceType
    replicaset: ResourceType
    statefulset: ResourceType
    daemonset: ResourceType
    job: ResourceType
    cronjob: ResourceType
    namespace: ResourceType

    @classmethod
    def of(cls, core: ApiCore) -> Kinds:
        def t(group: str, version: str, plural: str) -> ResourceType:
            rt = core.registry.get(group, version, plural)
            assert rt is not None, plural
            return rt

        return cls(
            pod=t("", "v1", "pods"),
            node=t("", "v1", "nodes"),
            event=t("", "v1", "events"),
            deployment=t("apps", "v1", "deployments"),
            replicaset=t("apps", "v1", "replicasets"),
            statefulset=t("apps", "v1", "statefulsets"),
            daemonset=t("apps", "v1", "daemonsets"),
            job=t("batch", "v1", "jobs"),
            cronjob=t("batch", "v1", "cronjobs"),
            namespace=t("", "v1", "namespaces"),
        )


class Writer:
    """Controller writes: through admission for creates, trusted for status and bindings."""

    def __init__(self, core: ApiCore, kinds: Kinds) -> None:
        self.core = core
        self.kinds = kinds
        self.changes = 0

    def create(self, rt: ResourceType, namespace: str, obj: KubeObject) -> KubeObject | None:
        try:
            stored = self.core.create(rt, namespace, obj)
        except ApiError as e:
            log.debug("controller create of %s failed: %s", rt.plural, e.message)
            return None
        self.changes += 1
        return stored.obj

    def put(self, rt: ResourceType, obj: KubeObject) -> KubeObject:
        """Store ``obj`` (a modified clone of the current object) as is."""
        obj["metadata"].pop("resourceVersion", None)
        stored = self.core.store.update(rt.storage_key, rt.group_resource, obj)
        self.changes += 1
        return stored.obj

    def set_status(self, rt: ResourceType, obj: KubeObject, status: dict[str, Any]) -> None:
        """Write ``status`` if it differs from the stored one."""
        if obj.get("status") == status:
            return
        new = dict(obj)
        new["metadata"] = dict(obj["metadata"])
        new["status"] = status
        self.put(rt, new)

    def delete(self, rt: ResourceType, namespace: str, name: str) -> None:
        try:
            self.core.delete(rt, namespace, name)
            self.changes += 1
        except ApiError:
            pass

    def event(
        self,
        involved: KubeObject,
        reason: str,
        message: str,
        now: float,
        type_: str = "Normal",
        component: str = "kubelet",
    ) -> None:
        m = involved["metadata"]
        namespace = m.get("namespace") or "default"
        event = {
            "metadata": {"generateName": f"{m['name']}.", "namespace": namespace},
            "involvedObject": {
                "kind": involved.get("kind"),
                "namespace": m.get("namespace", ""),
                "name": m["name"],
                "uid": m.get("uid"),
                "apiVersion": involved.get("apiVersion"),
                "resourceVersion": m.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": component},
            "firstTimestamp": rfc3339(now),
            "lastTimestamp": rfc3339(now),
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": "",
        }
        self.create(self.kinds.event, namespace, event)


@dataclass
class StepContext:
    """One step's view: time, writer, and objects grouped by their controller's uid."""

    now: float
    writer: Writer
    kinds: Kinds
    rng: random.Random
    owned: dict[str, list[KubeObject]] = field(default_factory=lambda: defaultdict(list))

    def index_pods(self) -> None:
        """Group pods and the other owned objects by controller uid."""
        self.owned = defaultdict(list)
        store = self.writer.core.store
        for rt in (self.kinds.pod, self.kinds.replicaset, self.kinds.job):
            for stored in store.items(rt.storage_key):
                for ref in stored.obj["metadata"].get("ownerReferences") or []:
                    if ref.get("controller"):
                        self.owned[ref["uid"]].append(stored.obj)

    def objects(self, rt: ResourceType) -> list[KubeObject]:
        return [s.obj for s in self.writer.core.store.items(rt.storage_key)]


def pod_from_template(
    owner: KubeObject, template: KubeObject, name: str | None, extra_labels: dict[str, str]
) -> KubeObject:
    """A pod for ``owner`` from its pod template."""
    t = clone(template)
    m = t.get("metadata") or {}
    labels = {**(m.get("labels") or {}), **extra_labels}
    metadata: dict[str, Any] = {
        "labels": labels,
        "namespace": owner["metadata"]["namespace"],
        "ownerReferences": [owner_reference(owner)],
    }
    if m.get("annotations"):
        metadata["annotations"] = m["annotations"]
    if name:
        metadata["name"] = name
    else:
        metadata["generateName"] = f"{owner['metadata']['name']}-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": t.get("spec", {})}


def is_active(pod: KubeObject) -> bool:
    """Not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def is_ready(pod: KubeObject) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False
