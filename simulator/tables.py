"""Server-side printing: ``meta.k8s.io/v1 Table`` responses, the columns kubectl shows.

kubectl asks for tables and prints whatever columns come back, so these decide what
``kubectl get`` looks like. Built-in kinds get the columns the real server prints; custom
resources get their CRD's ``additionalPrinterColumns``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from simulator.jsonpath import get_path
from simulator.objects import KubeObject, age, parse_time
from simulator.resources import ResourceType

__all__ = ["build_table"]

Column = tuple[str, str, str, int]  # name, type, format, priority
Row = Callable[[KubeObject, float], list[Any]]


def _created_age(obj: KubeObject, now: float) -> str:
    ts = obj.get("metadata", {}).get("creationTimestamp")
    return age(parse_time(ts), now) if ts else "<unknown>"


def _name(obj: KubeObject) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _pod_status(pod: KubeObject) -> tuple[str, int, int, int]:
    """(status text, ready containers, total containers, restarts)."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    containers = pod.get("spec", {}).get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    for s in statuses:
        state = s.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state and state["terminated"].get("reason"):
            reason = state["terminated"]["reason"]
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason), ready, len(containers), restarts


def _pod_row(pod: KubeObject, now: float) -> list[Any]:
    reason, ready, total, restarts = _pod_status(pod)
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts,
        _created_age(pod, now),
        (pod.get("status") or {}).get("podIP") or "<none>",
        pod.get("spec", {}).get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _node_row(node: KubeObject, now: float) -> list[Any]:
    status = node.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    text = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if node.get("spec", {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    labels = node.get("metadata", {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    info = status.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [
        _name(node),
        text,
        ",".join(roles) or "<none>",
        _created_age(node, now),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", ""),
        info.get("kernelVersion", ""),
        info.get("containerRuntimeVersion", ""),
    ]


def _containers(obj: KubeObject) -> list[dict[str, Any]]:
    template = obj.get("spec", {}).get("template") or {}
    result: list[dict[str, Any]] = template.get("spec", {}).get("containers") or []
    return result


def _selector_text(obj: KubeObject) -> str:
    selector = obj.get("spec", {}).get("selector") or {}
    labels = selector.get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _deployment_row(d: KubeObject, now: float) -> list[Any]:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    containers = _containers(d)
    return [
        _name(d),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _created_age(d, now),
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
        _selector_text(d),
    ]


def _replicaset_row(rs: KubeObject, now: float) -> list[Any]:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    return [
        _name(rs),
        spec.get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _created_age(rs, now),
    ]


def _statefulset_row(s: KubeObject, now: float) -> list[Any]:
    spec, status = s.get("spec") or {}, s.get("status") or {}
    return [
        _name(s),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        _created_age(s, now),
    ]


def _daemonset_row(ds: KubeObject, now: float) -> list[Any]:
    status = ds.get("status") or {}
    selector = (ds.get("spec", {}).get("template") or {}).get("spec", {}).get("nodeSelector")
    return [
        _name(ds),
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in (selector or {}).items()) or "<none>",
        _created_age(ds, now),
    ]


def _job_row(job: KubeObject, now: float) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    state = "Running"
    if conditions.get("Complete") == "True":
        state = "Complete"
    elif conditions.get("Failed") == "True":
        state = "Failed"
    duration = ""
    if status.get("startTime"):
        end = parse_time(status["completionTime"]) if status.get("completionTime") else now
        duration = age(parse_time(status["startTime"]), end)
    return [
        _name(job),
        state,
        f"{status.get('succeeded', 0)}/{spec.get('completions', 1)}",
        duration,
        _created_age(job, now),
    ]


def _cronjob_row(cj: KubeObject, now: float) -> list[Any]:
    spec, status = cj.get("spec") or {}, cj.get("status") or {}
    last = status.get("lastScheduleTime")
    return [
        _name(cj),
        spec.get("schedule", ""),
        spec.get("timeZone") or "<none>",
        str(bool(spec.get("suspend"))),
        len(status.get("active") or []),
        age(parse_time(last), now) if last else "<none>",
        _created_age(cj, now),
    ]


def _event_row(ev: KubeObject, now: float) -> list[Any]:
    involved = ev.get("involvedObject") or {}
    last = (
        ev.get("lastTimestamp")
        or ev.get("eventTime")
        or ev.get("metadata", {}).get("creationTimestamp")
    )
    return [
        age(parse_time(last), now) if last else "<unknown>",
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        ev.get("message", ""),
    ]


def _lease_row(lease: KubeObject, now: float) -> list[Any]:
    return [
        _name(lease),
        (lease.get("spec") or {}).get("holderIdentity") or "",
        _created_age(lease, now),
    ]


def _hpa_targets(spec: dict[str, Any], status: dict[str, Any]) -> str:
    """``current/target`` per External metric, as kubectl prints them (``(avg)`` for
    AverageValue); ``<unknown>`` where no value is known."""
    current = status.get("currentMetrics") or []
    shown = []
    for i, metric in enumerate(spec.get("metrics") or []):
        if metric.get("type") != "External":
            shown.append("<unknown>")
            continue
        target = (metric.get("external") or {}).get("target") or {}
        now = current[i].get("external", {}).get("current", {}) if i < len(current) else {}
        if target.get("type") == "AverageValue":
            value = now.get("averageValue") or "<unknown>"
            shown.append(f"{value}/{target.get('averageValue')} (avg)")
        else:
            shown.append(f"{now.get('value') or '<unknown>'}/{target.get('value')}")
    return ", ".join(shown) or "<unknown>"


def _apiservice_row(svc: KubeObject, now: float) -> list[Any]:
    spec = svc.get("spec") or {}
    ref = spec.get("service")
    available = next(
        (
            c
            for c in (svc.get("status") or {}).get("conditions") or []
            if c.get("type") == "Available"
        ),
        None,
    )
    shown = "Unknown"
    if available is not None:
        shown = (
            "True"
            if available.get("status") == "True"
            else (f"False ({available.get('reason', '')})")
        )
    return [
        _name(svc),
        f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else "Local",
        shown,
        _created_age(svc, now),
    ]


def _hpa_row(hpa: KubeObject, now: float) -> list[Any]:
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    return [
        _name(hpa),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _hpa_targets(spec, status),
        spec.get("minReplicas", 1),
        spec.get("maxReplicas", 0),
        status.get("currentReplicas", 0),
        _created_age(hpa, now),
    ]


def _namespace_row(ns: KubeObject, now: float) -> list[Any]:
    return [_name(ns), (ns.get("status") or {}).get("phase", "Active"), _created_age(ns, now)]


def _data_row(obj: KubeObject, now: float) -> list[Any]:
    data = len(obj.get("data") or {}) + len(obj.get("binaryData") or obj.get("stringData") or {})
    if obj.get("kind") == "Secret":
        return [_name(obj), obj.get("type", "Opaque"), data, _created_age(obj, now)]
    return [_name(obj), data, _created_age(obj, now)]


def _crd_row(crd: KubeObject, now: float) -> list[Any]:
    return [_name(crd), crd.get("metadata", {}).get("creationTimestamp", "")]


def _default_row(obj: KubeObject, now: float) -> list[Any]:
    return [_name(obj), _created_age(obj, now)]


_N = ("Name", "string", "name", 0)
_AGE = ("Age", "string", "", 0)

_BUILTIN: dict[str, tuple[tuple[Column, ...], Row]] = {
    "Pod": (
        (
            _N,
            ("Ready", "string", "", 0),
            ("Status", "string", "", 0),
            ("Restarts", "integer", "", 0),
            _AGE,
            ("IP", "string", "", 1),
            ("Node", "string", "", 1),
            ("Nominated Node", "string", "", 1),
            ("Readiness Gates", "string", "", 1),
        ),
        _pod_row,
    ),
    "Node": (
        (
            _N,
            ("Status", "string", "", 0),
            ("Roles", "string", "", 0),
            _AGE,
            ("Version", "string", "", 0),
            ("Internal-IP", "string", "", 1),
            ("External-IP", "string", "", 1),
            ("OS-Image", "string", "", 1),
            ("Kernel-Version", "string", "", 1),
            ("Container-Runtime", "string", "", 1),
        ),
        _node_row,
    ),
    "Deployment": (
        (
            _N,
            ("Ready", "string", "", 0),
            ("Up-to-date", "integer", "", 0),
            ("Available", "integer", "", 0),
            _AGE,
            ("Containers", "string", "", 1),
            ("Images", "string", "", 1),
            ("Selector", "string", "", 1),
        ),
        _deployment_row,
    ),
    "ReplicaSet": (
        (
            _N,
            ("Desired", "integer", "", 0),
            ("Current", "integer", "", 0),
            ("Ready", "integer", "", 0),
            _AGE,
        ),
        _replicaset_row,
    ),
    "StatefulSet": ((_N, ("Ready", "string", "", 0), _AGE), _statefulset_row),
    "DaemonSet": (
        (
            _N,
            ("Desired", "integer", "", 0),
            ("Current", "integer", "", 0),
            ("Ready", "integer", "", 0),
            ("Up-to-date", "integer", "", 0),
            ("Available", "integer", "", 0),
            ("Node Selector", "string", "", 0),
            _AGE,
        ),
        _daemonset_row,
    ),
    "Job": (
        (
            _N,
            ("Status", "string", "", 0),
            ("Completions", "string", "", 0),
            ("Duration", "string", "", 0),
            _AGE,
        ),
        _job_row,
    ),
    "CronJob": (
        (
            _N,
            ("Schedule", "string", "", 0),
            ("Timezone", "string", "", 0),
            ("Suspend", "boolean", "", 0),
            ("Active", "integer", "", 0),
            ("Last Schedule", "string", "", 0),
            _AGE,
        ),
        _cronjob_row,
    ),
    "Event": (
        (
            ("Last Seen", "string", "", 0),
            ("Type", "string", "", 0),
            ("Reason", "string", "", 0),
            ("Object", "string", "", 0),
            ("Message", "string", "", 0),
        ),
        _event_row,
    ),
    "Lease": ((_N, ("Holder", "string", "", 0), _AGE), _lease_row),
    "HorizontalPodAutoscaler": (
        (
            _N,
            ("Reference", "string", "", 0),
            ("Targets", "string", "", 0),
            ("MinPods", "string", "", 0),
            ("MaxPods", "integer", "", 0),
            ("Replicas", "integer", "", 0),
            _AGE,
        ),
        _hpa_row,
    ),
    "Namespace": ((_N, ("Status", "string", "", 0), _AGE), _namespace_row),
    "APIService": (
        (_N, ("Service", "string", "", 0), ("Available", "string", "", 0), _AGE),
        _apiservice_row,
    ),
    "ConfigMap": ((_N, ("Data", "integer", "", 0), _AGE), _data_row),
    "Secret": ((_N, ("Type", "string", "", 0), ("Data", "integer", "", 0), _AGE), _data_row),
    "CustomResourceDefinition": ((_N, ("Created At", "date", "", 0)), _crd_row),
}


def _custom_columns(rt: ResourceType) -> tuple[tuple[Column, ...], Row]:
    if not rt.printer_columns:
        return (_N, _AGE), _default_row
    columns = (_N, *((c.name, c.type, c.format, c.priority) for c in rt.printer_columns))

    def row(obj: KubeObject, now: float) -> list[Any]:
        cells: list[Any] = [_name(obj)]
        for c in rt.printer_columns:
            try:
                value = get_path(obj, c.json_path)
            except ValueError:
                value = None
            if value is not None and c.type == "date" and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = age(parse_time(value), now)
            cells.append(value)
        return cells

    return columns, row


def build_table(
    rt: ResourceType,
    objects: Iterable[KubeObject],
    now: float,
    include_object: str,
    list_meta: dict[str, Any],
) -> dict[str, Any]:
    """A ``Table`` for ``objects``; ``include_object`` is None, Metadata or Object."""
    if rt.custom:
        columns, row = _custom_columns(rt)
    else:
        columns, row = _BUILTIN.get(rt.kind, ((_N, _AGE), _default_row))
    rows = []
    for obj in objects:
        entry: dict[str, Any] = {"cells": row(obj, now)}
        if include_object == "Object":
            entry["object"] = obj
        elif include_object != "None":
            entry["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata", {}),
            }
        rows.append(entry)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {"name": n, "type": t, "format": f, "description": n, "priority": p}
            for n, t, f, p in columns
        ],
        "rows": rows,
    }
