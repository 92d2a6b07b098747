"""Defaulting and validation of built-in objects on create and update.

What the real API server's registry strategies do for the kinds foresight touches: names and
namespaces checked, server-set metadata filled in, ``generation`` bumped on spec changes,
``status`` writable only through ``/status``, pod resources changeable only through
``/resize``. Failures are 422 Invalid with the field path, as the real server words them.
"""

from __future__ import annotations

import random
import re
from typing import Any

from runtime.quantity import parse_quantity
from simulator.errors import ApiError
from simulator.objects import KubeObject, new_uid, rfc3339
from simulator.resources import ResourceType
from simulator.selectors import LabelSelector

__all__ = [
    "Causes",
    "admit_create",
    "admit_update",
    "pod_qos_class",
    "resize_restart_policy",
    "validate_resize",
]

Causes = list[tuple[str, str]]

_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
# The alphabet the API server draws generateName suffixes from (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_RESOURCE_NAMES = ("cpu", "memory")


def random_suffix(rng: random.Random, length: int = 5) -> str:
    return "".join(rng.choice(_SUFFIX_ALPHABET) for _ in range(length))


def _check_name(rt: ResourceType, name: Any, causes: Causes) -> None:
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
        return
    if not isinstance(name, str):
        causes.append(("metadata.name", f"Invalid value: {name!r}: must be a string"))
        return
    label_only = rt.kind in ("Namespace",)
    pattern, msg = (
        (_DNS1123_LABEL, _LABEL_MSG) if label_only else (_DNS1123_SUBDOMAIN, _SUBDOMAIN_MSG)
    )
    limit = 63 if label_only else 253
    if rt.kind in ("Lease", "ConfigMap", "Secret", "Event") and len(name) <= 253:
        # Objects whose names are free-form enough that only length and '/' matter.
        if "/" in name or name in (".", ".."):
            causes.append(("metadata.name", f"Invalid value: \"{name}\": may not contain '/'"))
        return
    if len(name) > limit or not pattern.match(name):
        causes.append(("metadata.name", f'Invalid value: "{name}": {msg}'))


def pod_qos_class(pod: KubeObject) -> str:
    """``Guaranteed``, ``Burstable`` or ``BestEffort``, by the kubelet's rules."""
    containers = pod.get("spec", {}).get("containers") or []
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        requests = res.get("requests") or {}
        limits = res.get("limits") or {}
        if requests or limits:
            any_set = True
        for name in _RESOURCE_NAMES:
            if name not in limits or (
                name in requests and parse_quantity(requests[name]) != parse_quantity(limits[name])
            ):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _check_resources(path: str, resources: Any, causes: Causes) -> None:
    if resources is None:
        return
    if not isinstance(resources, dict):
        causes.append((path, "Invalid value: must be an object"))
        return
    parsed: dict[str, dict[str, float]] = {}
    for section in ("requests", "limits"):
        values = resources.get(section) or {}
        parsed[section] = {}
        for name, value in values.items():
            try:
                parsed[section][name] = parse_quantity(value)
            except ValueError as e:
                causes.append((f"{path}.{section}[{name}]", f'Invalid value: "{value}": {e}'))
                continue
            if parsed[section][name] < 0:
                causes.append(
                    (
                        f"{path}.{section}[{name}]",
                        f'Invalid value: "{value}": must be greater than or equal to 0',
                    )
                )
    for name, request in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and request > limit:
            causes.append(
                (
                    f"{path}.requests",
                    f'Invalid value: "{resources["requests"][name]}": must be less than '
                    f"or equal to {name} limit of {resources['limits'][name]}",
                )
            )


def _check_pod_spec(path: str, spec: Any, causes: Causes) -> None:
    if not isinstance(spec, dict):
        causes.append((path, "Required value"))
        return
    containers = spec.get("containers")
    if not containers or not isinstance(containers, list):
        causes.append((f"{path}.containers", "Required value"))
        return
    seen: set[str] = set()
    for i, c in enumerate(containers):
        cpath = f"{path}.containers[{i}]"
        if not isinstance(c, dict):
            causes.append((cpath, "Invalid value: must be an object"))
            continue
        name = c.get("name")
        if not name:
            causes.append((f"{cpath}.name", "Required value"))
        elif name in seen:
            causes.append((f"{cpath}.name", f'Duplicate value: "{name}"'))
        else:
            seen.add(name)
        if not c.get("image"):
            causes.append((f"{cpath}.image", "Required value"))
        _check_resources(f"{cpath}.resources", c.get("resources"), causes)


def _default_pod(pod: KubeObject) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("enableServiceLinks", True)
    for c in spec.get("containers") or []:
        if isinstance(c, dict):
            c.setdefault("resources", {})
            c.setdefault("imagePullPolicy", "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            res = c["resources"]
            # A limit without a request means a request of the same size, as in Kubernetes.
            if isinstance(res, dict) and res.get("limits"):
                requests = res.setdefault("requests", {})
                for name, value in res["limits"].items():
                    requests.setdefault(name, value)


def _check_workload(rt: ResourceType, obj: KubeObject, causes: Causes) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.append(("spec", "Required value"))
        return
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        causes.append(
            ("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")
        )
    template = spec.get("template")
    if rt.kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        if not spec.get("schedule"):
            causes.append(("spec.schedule", "Required value"))
    if not isinstance(template, dict):
        causes.append(("spec.template", "Required value"))
        return
    _check_pod_spec("spec.template.spec", template.get("spec"), causes)
    if rt.kind in ("Job", "CronJob"):
        return
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        causes.append(("spec.selector", "Required value"))
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    try:
        matches = LabelSelector.from_object(selector).matches(labels)
    except ValueError as e:
        causes.append(("spec.selector", f"Invalid value: {e}"))
        return
    if not matches:
        causes.append(
            (
                "spec.template.metadata.labels",
                f"Invalid value: {labels}: `selector` does not match template `labels`",
            )
        )


def _default_workload(rt: ResourceType, obj: KubeObject) -> None:
    spec = obj.setdefault("spec", {})
    if rt.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        spec.setdefault("replicas", 1)
    if rt.kind == "Deployment":
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        )
    if rt.kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("serviceName", "")
        spec.setdefault(
            "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        )
    if rt.kind == "Job":
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
    if rt.kind == "CronJob":
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
    template = spec.get("template")
    if rt.kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    if isinstance(template, dict):
        _default_pod(template)
        template.setdefault("metadata", {})
        if rt.kind == "Job":
            template["spec"].setdefault("restartPolicy", "Never")
    obj.setdefault("status", {})


def _validate(rt: ResourceType, obj: KubeObject) -> Causes:
    causes: Causes = []
    if rt.kind == "Pod":
        _check_pod_spec("spec", obj.get("spec"), causes)
    elif rt.kind in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job", "CronJob"):
        _check_workload(rt, obj, causes)
    elif rt.kind == "Lease":
        spec = obj.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            causes.append(
                ("spec.leaseDurationSeconds", f"Invalid value: {duration}: must be greater than 0")
            )
    return causes


def admit_create(
    rt: ResourceType, obj: KubeObject, namespace: str, now: float, rng: random.Random
) -> KubeObject:
    """Fill server-set fields and defaults, then validate; raises ApiError 400/422."""
    if not isinstance(obj, dict):
        raise ApiError.bad_request("the request body must be a JSON object")
    kind = obj.get("kind")
    if kind not in (None, rt.kind):
        raise ApiError.bad_request(
            f"the kind {kind!r} of the object does not match the resource {rt.group_resource}"
        )
    api_version = obj.get("apiVersion")
    if api_version not in (None, rt.api_version):
        raise ApiError.bad_request(
            f"the API version {api_version!r} of the object does not match {rt.api_version!r}"
        )
    obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    if rt.namespaced:
        body_ns = m.get("namespace")
        if body_ns and body_ns != namespace:
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        m["namespace"] = namespace
    else:
        m.pop("namespace", None)
    if not m.get("name") and m.get("generateName"):
        m["name"] = str(m["generateName"]) + random_suffix(rng)
    causes: Causes = []
    _check_name(rt, m.get("name"), causes)
    for field in ("labels", "annotations"):
        values = m.get(field)
        if values is not None and (
            not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
        ):
            causes.append((f"metadata.{field}", "Invalid value: values must be strings"))
    if not causes:
        if rt.kind == "Pod":
            _default_pod(obj)
        elif rt.kind in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job", "CronJob"):
            _default_workload(rt, obj)
        causes = _validate(rt, obj)
    if causes:
        raise ApiError.invalid(rt.kind, rt.group, str(m.get("name") or ""), causes)
    m["uid"] = new_uid()
    m["creationTimestamp"] = rfc3339(now)
    m.pop("resourceVersion", None)
    m.pop("deletionTimestamp", None)
    if "spec" in obj or rt.custom:
        m["generation"] = 1
    if rt.kind == "Namespace":
        m.setdefault("labels", {})["kubernetes.io/metadata.name"] = m["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
    if rt.kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": pod_qos_class(obj)}
    return obj


_POD_MUTABLE_CONTAINER_FIELDS = ("image",)


def _pod_spec_without_mutable(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    out = dict(spec)
    out.pop("activeDeadlineSeconds", None)
    out.pop("tolerations", None)
    out.pop("nodeName", None)
    out["containers"] = [
        {k: v for k, v in c.items() if k not in _POD_MUTABLE_CONTAINER_FIELDS}
        for c in spec.get("containers") or []
        if isinstance(c, dict)
    ]
    return out


def admit_update(
    rt: ResourceType, old: KubeObject, new: KubeObject, subresource: str
) -> KubeObject:
    """Keep immutable and server-owned fields, bump ``generation``; raises ApiError 400/422."""
    if not isinstance(new, dict):
        raise ApiError.bad_request("the request body must be a JSON object")
    new["kind"], new["apiVersion"] = rt.kind, rt.api_version
    m = new.get("metadata")
    if not isinstance(m, dict):
        m = new["metadata"] = {}
    om = old["metadata"]
    if m.get("name") not in (None, om["name"]):
        raise ApiError.bad_request(
            f"the name of the object ({m.get('name')}) does not match the name on the URL "
            f"({om['name']})"
        )
    for field in (
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
    ):
        if field in om:
            m[field] = om[field]
        else:
            m.pop(field, None)
    if subresource == "status":
        # Status writes change status only (and may not touch spec or labels).
        result = dict(old)
        result["status"] = new.get("status", {})
        result["metadata"] = dict(om)
        if m.get("resourceVersion"):
            result["metadata"]["resourceVersion"] = m["resourceVersion"]
        else:
            result["metadata"].pop("resourceVersion", None)
        return result
    if rt.has_status and subresource == "":
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    causes: Causes = []
    if rt.kind == "Pod" and subresource == "":
        if _pod_spec_without_mutable(new.get("spec")) != _pod_spec_without_mutable(old.get("spec")):
            raise ApiError.invalid(
                "Pod",
                "",
                om["name"],
                [
                    (
                        "spec",
                        "Forbidden: pod updates may not change fields other than "
                        "`spec.containers[*].image`, `spec.activeDeadlineSeconds`, "
                        "`spec.tolerations` (only additions to existing tolerations) or "
                        "`spec.terminationGracePeriodSeconds`; resources change through the resize "
                        "subresource",
                    )
                ],
            )
        if old.get("spec", {}).get("nodeName"):
            new.setdefault("spec", {})["nodeName"] = old["spec"]["nodeName"]
    if rt.kind in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet") and (
        (new.get("spec") or {}).get("selector") != (old.get("spec") or {}).get("selector")
    ):
        causes.append(("spec.selector", "Invalid value: field is immutable"))
    if rt.kind in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job", "CronJob"):
        _default_workload(rt, new)
    causes += _validate(rt, new)
    for field in ("labels", "annotations"):
        values = m.get(field)
        if values is not None and (
            not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
        ):
            causes.append((f"metadata.{field}", "Invalid value: values must be strings"))
    if causes:
        raise ApiError.invalid(rt.kind, rt.group, om["name"], causes)
    if "generation" in om and new.get("spec") != old.get("spec"):
        m["generation"] = int(om["generation"]) + 1
    return new


def resize_restart_policy(container: dict[str, Any], resource: str) -> str:
    """A container's ``resizePolicy`` for ``resource`` (``NotRequired`` when unset)."""
    for entry in container.get("resizePolicy") or []:
        if entry.get("resourceName") == resource:
            return str(entry.get("restartPolicy") or "NotRequired")
    return "NotRequired"


def _check_memory_limit_decreases(
    old_spec: dict[str, Any], new_spec: dict[str, Any], causes: Causes
) -> None:
    # Kubernetes 1.33 refuses a memory limit decrease the container would have to take without
    # a restart: the kernel may not be able to reclaim the memory (KEP-1287).
    old_containers = {c.get("name"): c for c in old_spec.get("containers") or []}
    for i, c in enumerate(new_spec.get("containers") or []):
        before = old_containers.get(c.get("name")) or {}
        old_limit = ((before.get("resources") or {}).get("limits") or {}).get("memory")
        new_limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if old_limit is None or new_limit is None:
            continue
        try:
            lower = parse_quantity(new_limit) < parse_quantity(old_limit)
        except ValueError:
            continue  # named by the resource checks
        if lower and resize_restart_policy(c, "memory") != "RestartContainer":
            causes.append(
                (
                    f"spec.containers[{i}].resources.limits.memory",
                    "Forbidden: memory limits cannot be decreased unless resizePolicy is "
                    "RestartContainer",
                )
            )


def validate_resize(old: KubeObject, new: KubeObject) -> KubeObject:
    """A pod after a ``/resize`` write: only container resources may differ; 422 otherwise."""
    name = old["metadata"]["name"]
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}

    def strip(spec: dict[str, Any]) -> dict[str, Any]:
        out = dict(spec)
        out["containers"] = [
            {k: v for k, v in c.items() if k != "resources"} for c in spec.get("containers") or []
        ]
        return out

    if strip(old_spec) != strip(new_spec):
        raise ApiError.invalid(
            "Pod",
            "",
            name,
            [
                (
                    "spec",
                    "Forbidden: only cpu and memory resources for non-restartable containers "
                    "are mutable through pods/resize",
                )
            ],
        )
    causes: Causes = []
    for i, c in enumerate(new_spec.get("containers") or []):
        _check_resources(f"spec.containers[{i}].resources", c.get("resources"), causes)
        res = c.get("resources") or {}
        extra = set(res.get("requests") or {}) | set(res.get("limits") or {})
        for resource in sorted(extra - set(_RESOURCE_NAMES)):
            causes.append(
                (
                    f"spec.containers[{i}].resources",
                    f"Forbidden: only cpu and memory resources are mutable ({resource})",
                )
            )
    _check_memory_limit_decreases(old_spec, new_spec, causes)
    if causes:
        raise ApiError.invalid("Pod", "", name, causes)
    result = dict(old)
    result["spec"] = new_spec
    result["metadata"] = dict(old["metadata"])
    if new.get("metadata", {}).get("resourceVersion"):
        result["metadata"]["resourceVersion"] = new["metadata"]["resourceVersion"]
    else:
        result["metadata"].pop("resourceVersion", None)
    if pod_qos_class(result) != pod_qos_class(old):
        raise ApiError.invalid(
            "Pod",
            "",
            name,
            [
                (
                    "spec",
                    "Forbidden: Pod QOS Class may not change as a result of resizing",
                )
            ],
        )
    return result
