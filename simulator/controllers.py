"""The controllers of kube-controller-manager, reduced to what a simulation needs.

Each ``reconcile_*`` function reads the current objects and writes the changes that bring
them toward their spec: Deployments own ReplicaSets, ReplicaSets / StatefulSets / DaemonSets
/ Jobs own pods, CronJobs own Jobs, and the garbage collector removes what lost its owner.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from simulator.context import StepContext, is_active, is_ready, pod_from_template
from simulator.cron import CronSchedule
from simulator.objects import KubeObject, clone, controller_of, owner_reference, parse_time, rfc3339

__all__ = ["reconcile_all"]


def _hash(template: Any) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))


def _condition(
    type_: str,
    status: str,
    reason: str,
    message: str,
    now: float,
    previous: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    old = next((c for c in previous or [] if c.get("type") == type_), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else rfc3339(now)
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": since,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def garbage_collect(ctx: StepContext) -> None:
    """Delete pods, ReplicaSets and Jobs whose controlling owner is gone."""
    store = ctx.writer.core.store
    alive: set[str] = set()
    for rt in (
        ctx.kinds.deployment,
        ctx.kinds.replicaset,
        ctx.kinds.statefulset,
        ctx.kinds.daemonset,
        ctx.kinds.job,
        ctx.kinds.cronjob,
    ):
        alive.update(s.obj["metadata"]["uid"] for s in store.items(rt.storage_key))
    for rt in (ctx.kinds.pod, ctx.kinds.replicaset, ctx.kinds.job):
        for obj in ctx.objects(rt):
            ref = controller_of(obj)
            if (
                ref is not None
                and ref.get("uid") not in alive
                and ref.get("kind")
                in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob")
            ):
                ctx.writer.delete(rt, obj["metadata"]["namespace"], obj["metadata"]["name"])


def reconcile_deployments(ctx: StepContext) -> None:
    k = ctx.kinds
    for d in ctx.objects(k.deployment):
        spec = d["spec"]
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template", {})
        pod_hash = _hash(template)
        owned = [rs for rs in ctx.owned.get(d["metadata"]["uid"], []) if rs["kind"] == "ReplicaSet"]
        current = next(
            (
                rs
                for rs in owned
                if rs["metadata"].get("labels", {}).get("pod-template-hash") == pod_hash
            ),
            None,
        )
        if current is None and not spec.get("paused"):
            rs_template = clone(template)
            rs_template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = (
                pod_hash
            )
            selector = clone(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
            rs: KubeObject = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{d['metadata']['name']}-{pod_hash}",
                    "namespace": d["metadata"]["namespace"],
                    "labels": rs_template["metadata"]["labels"],
                    "annotations": {
                        "deployment.kubernetes.io/revision": str(len(owned) + 1),
                        "deployment.kubernetes.io/desired-replicas": str(replicas),
                    },
                    "ownerReferences": [owner_reference(d)],
                },
                "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
            }
            created = ctx.writer.create(k.replicaset, d["metadata"]["namespace"], rs)
            if created is not None:
                ctx.writer.event(
                    d,
                    "ScalingReplicaSet",
                    f"Scaled up replica set {created['metadata']['name']} to {replicas}",
                    ctx.now,
                    component="deployment-controller",
                )
                current = created
                owned.append(created)
        new_ready = int((current or {}).get("status", {}).get("readyReplicas", 0))
        for rs in owned:
            want = (
                replicas
                if rs is current
                else max(0, min(int(rs["spec"].get("replicas", 0)), replicas - new_ready))
            )
            if int(rs["spec"].get("replicas", 0)) != want:
                old = int(rs["spec"].get("replicas", 0))
                new = clone(rs)
                new["spec"]["replicas"] = want
                ctx.writer.put(k.replicaset, new)
                verb = "up" if want > old else "down"
                ctx.writer.event(
                    d,
                    "ScalingReplicaSet",
                    f"Scaled {verb} replica set {rs['metadata']['name']} from {old} to {want}",
                    ctx.now,
                    component="deployment-controller",
                )
        total = sum(int(rs.get("status", {}).get("replicas", 0)) for rs in owned)
        ready = sum(int(rs.get("status", {}).get("readyReplicas", 0)) for rs in owned)
        updated = int((current or {}).get("status", {}).get("replicas", 0))
        previous = d.get("status", {}).get("conditions")
        available = ready >= replicas
        status: dict[str, Any] = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [
                _condition(
                    "Available",
                    "True" if available else "False",
                    "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                    "Deployment has minimum availability."
                    if available
                    else "Deployment does not have minimum availability.",
                    ctx.now,
                    previous,
                ),
                _condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable"
                    if available and updated == replicas
                    else "ReplicaSetUpdated",
                    f'ReplicaSet "{(current or d)["metadata"]["name"]}" has successfully '
                    "progressed.",
                    ctx.now,
                    previous,
                ),
            ],
        }
        if total - ready > 0:
            status["unavailableReplicas"] = total - ready
        for key in ("readyReplicas", "availableReplicas", "updatedReplicas", "replicas"):
            if status[key] == 0:
                del status[key]
        ctx.writer.set_status(k.deployment, d, status)


def _pick_surplus(pods: list[KubeObject], count: int) -> list[KubeObject]:
    """Pods to remove first: unscheduled, then not ready, then the newest."""

    def rank(p: KubeObject) -> tuple[int, int, float]:
        created = p["metadata"].get("creationTimestamp")
        return (
            1 if p["spec"].get("nodeName") else 0,
            1 if is_ready(p) else 0,
            -parse_time(created) if created else 0.0,
        )

    return sorted(pods, key=rank)[:count]


def reconcile_replicasets(ctx: StepContext) -> None:
    k = ctx.kinds
    for rs in ctx.objects(k.replicaset):
        replicas = int(rs["spec"].get("replicas", 0))
        pods = [
            p
            for p in ctx.owned.get(rs["metadata"]["uid"], [])
            if p["kind"] == "Pod" and is_active(p)
        ]
        missing = replicas - len(pods)
        template = rs["spec"].get("template", {})
        for _ in range(max(0, missing)):
            pod = ctx.writer.create(
                k.pod, rs["metadata"]["namespace"], pod_from_template(rs, template, None, {})
            )
            if pod is not None:
                pods.append(pod)
        if missing < 0:
            for p in _pick_surplus(pods, -missing):
                ctx.writer.delete(k.pod, p["metadata"]["namespace"], p["metadata"]["name"])
                pods.remove(p)
        ready = sum(1 for p in pods if is_ready(p))
        status: dict[str, Any] = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        for key in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
            if status[key] == 0:
                del status[key]
        ctx.writer.set_status(k.replicaset, rs, status)


def reconcile_statefulsets(ctx: StepContext) -> None:
    k = ctx.kinds
    for sts in ctx.objects(k.statefulset):
        name = sts["metadata"]["name"]
        replicas = int(sts["spec"].get("replicas", 1))
        revision = f"{name}-{_hash(sts['spec'].get('template'))[:10]}"
        pods = {
            p["metadata"]["name"]: p
            for p in ctx.owned.get(sts["metadata"]["uid"], [])
            if p["kind"] == "Pod" and is_active(p)
        }
        for i in range(replicas):
            pod_name = f"{name}-{i}"
            if pod_name in pods:
                continue
            pod = ctx.writer.create(
                k.pod,
                sts["metadata"]["namespace"],
                pod_from_template(
                    sts,
                    sts["spec"].get("template", {}),
                    pod_name,
                    {
                        "statefulset.kubernetes.io/pod-name": pod_name,
                        "controller-revision-hash": revision,
                        "apps.kubernetes.io/pod-index": str(i),
                    },
                ),
            )
            if pod is not None:
                pods[pod_name] = pod
        for pod_name, pod in list(pods.items()):
            index = pod_name.rsplit("-", 1)[-1]
            if not index.isdigit() or int(index) >= replicas:
                ctx.writer.delete(k.pod, pod["metadata"]["namespace"], pod_name)
                del pods[pod_name]
        ready = sum(1 for p in pods.values() if is_ready(p))
        status = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": ready,
            "currentReplicas": len(pods),
            "updatedReplicas": len(pods),
            "availableReplicas": ready,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        ctx.writer.set_status(k.statefulset, sts, status)


def _node_ready(node: KubeObject) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def _selects(node: KubeObject, selector: dict[str, str] | None) -> bool:
    labels = node["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in (selector or {}).items())


def _tolerates(pod_spec: dict[str, Any], node: KubeObject) -> bool:
    tolerations = pod_spec.get("tolerations") or []
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(
            (t.get("operator") == "Exists" and t.get("key") in (None, taint.get("key")))
            or t.get("key") == taint.get("key")
            for t in tolerations
        ):
            return False
    return True


def reconcile_daemonsets(ctx: StepContext) -> None:
    k = ctx.kinds
    nodes = [n for n in ctx.objects(k.node) if _node_ready(n)]
    for ds in ctx.objects(k.daemonset):
        template = ds["spec"].get("template", {})
        selector = (template.get("spec") or {}).get("nodeSelector")
        targets = [
            n for n in nodes if _selects(n, selector) and _tolerates(template.get("spec") or {}, n)
        ]
        pods = [
            p
            for p in ctx.owned.get(ds["metadata"]["uid"], [])
            if p["kind"] == "Pod" and is_active(p)
        ]
        by_node = {p["spec"].get("nodeName"): p for p in pods}
        for node in targets:
            if node["metadata"]["name"] in by_node:
                continue
            pod = pod_from_template(
                ds, template, None, {"controller-revision-hash": _hash(template)[:10]}
            )
            pod["spec"]["nodeName"] = node["metadata"]["name"]
            created = ctx.writer.create(k.pod, ds["metadata"]["namespace"], pod)
            if created is not None:
                pods.append(created)
        ready = sum(1 for p in pods if is_ready(p))
        status = {
            "currentNumberScheduled": len(pods),
            "desiredNumberScheduled": len(targets),
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": len(pods),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        ctx.writer.set_status(k.daemonset, ds, status)


def reconcile_jobs(ctx: StepContext) -> None:
    k = ctx.kinds
    for job in ctx.objects(k.job):
        spec, status = job["spec"], dict(job.get("status") or {})
        conditions = status.get("conditions") or []
        if any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in conditions
        ):
            continue
        pods = [p for p in ctx.owned.get(job["metadata"]["uid"], []) if p["kind"] == "Pod"]
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        succeeded = phases.count("Succeeded")
        failed = phases.count("Failed")
        active = len(pods) - succeeded - failed
        completions = int(spec.get("completions", 1))
        status.setdefault("startTime", rfc3339(ctx.now))
        if succeeded >= completions:
            status["conditions"] = [
                _condition(
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    ctx.now,
                ),
                _condition(
                    "Complete",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    ctx.now,
                ),
            ]
            status["completionTime"] = rfc3339(ctx.now)
            ctx.writer.event(job, "Completed", "Job completed", ctx.now, component="job-controller")
            active = 0
        elif failed > int(spec.get("backoffLimit", 6)):
            status["conditions"] = [
                _condition(
                    "FailureTarget",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    ctx.now,
                ),
                _condition(
                    "Failed",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    ctx.now,
                ),
            ]
            ctx.writer.event(
                job,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                ctx.now,
                "Warning",
                "job-controller",
            )
            active = 0
        else:
            want = min(int(spec.get("parallelism", 1)), completions - succeeded) - active
            template = spec.get("template", {})
            for _ in range(max(0, want)):
                labels = {
                    "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
                    "batch.kubernetes.io/job-name": job["metadata"]["name"],
                    "controller-uid": job["metadata"]["uid"],
                    "job-name": job["metadata"]["name"],
                }
                if ctx.writer.create(
                    k.pod,
                    job["metadata"]["namespace"],
                    pod_from_template(job, template, None, labels),
                ):
                    active += 1
        status.update(
            active=active,
            succeeded=succeeded,
            failed=failed,
            ready=sum(1 for p in pods if is_ready(p)),
        )
        for key in ("active", "succeeded", "failed"):
            if status[key] == 0:
                del status[key]
        ctx.writer.set_status(k.job, job, status)


def _job_done(job: KubeObject) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def reconcile_cronjobs(ctx: StepContext) -> None:
    k = ctx.kinds
    for cj in ctx.objects(k.cronjob):
        spec, status = cj["spec"], dict(cj.get("status") or {})
        jobs = sorted(
            (j for j in ctx.owned.get(cj["metadata"]["uid"], []) if j["kind"] == "Job"),
            key=lambda j: j["metadata"]["creationTimestamp"],
        )
        running = [j for j in jobs if _job_done(j) is None]
        try:
            schedule = CronSchedule.parse(spec.get("schedule", ""))
        except ValueError:
            continue
        since = status.get("lastScheduleTime") or cj["metadata"]["creationTimestamp"]
        due = schedule.next_after(parse_time(since))
        if due <= ctx.now and not spec.get("suspend"):
            # Only the latest missed run is started, as the real controller does after a gap.
            while (following := schedule.next_after(due)) <= ctx.now:
                due = following
            policy = spec.get("concurrencyPolicy", "Allow")
            if policy == "Forbid" and running:
                status["lastScheduleTime"] = rfc3339(due)
            else:
                if policy == "Replace":
                    for j in running:
                        ctx.writer.delete(k.job, j["metadata"]["namespace"], j["metadata"]["name"])
                    running = []
                template = clone(spec.get("jobTemplate") or {})
                job = {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {
                        "name": f"{cj['metadata']['name']}-{int(due // 60)}",
                        "namespace": cj["metadata"]["namespace"],
                        "labels": (template.get("metadata") or {}).get("labels") or {},
                        "annotations": {
                            "batch.kubernetes.io/cronjob-scheduled-timestamp": rfc3339(due)
                        },
                        "ownerReferences": [owner_reference(cj)],
                    },
                    "spec": template.get("spec") or {},
                }
                created = ctx.writer.create(k.job, cj["metadata"]["namespace"], job)
                if created is not None:
                    running.append(created)
                    jobs.append(created)
                    ctx.writer.event(
                        cj,
                        "SuccessfulCreate",
                        f"Created job {created['metadata']['name']}",
                        ctx.now,
                        component="cronjob-controller",
                    )
                status["lastScheduleTime"] = rfc3339(due)
        finished = [(j, _job_done(j)) for j in jobs if _job_done(j) is not None]
        for outcome, limit in (
            ("Complete", spec.get("successfulJobsHistoryLimit", 3)),
            ("Failed", spec.get("failedJobsHistoryLimit", 1)),
        ):
            done = [j for j, o in finished if o == outcome]
            for j in done[: max(0, len(done) - int(limit))]:
                ctx.writer.delete(k.job, j["metadata"]["namespace"], j["metadata"]["name"])
        succeeded = [j for j, o in finished if o == "Complete"]
        if succeeded:
            status["lastSuccessfulTime"] = (succeeded[-1].get("status") or {}).get(
                "completionTime", status.get("lastSuccessfulTime")
            )
        status["active"] = [
            {
                "kind": "Job",
                "namespace": j["metadata"]["namespace"],
                "name": j["metadata"]["name"],
                "uid": j["metadata"]["uid"],
                "apiVersion": "batch/v1",
            }
            for j in running
        ]
        if not status["active"]:
            del status["active"]
        ctx.writer.set_status(k.cronjob, cj, status)


_CONTROLLERS = (
    garbage_collect,
    reconcile_cronjobs,
    reconcile_jobs,
    reconcile_deployments,
    reconcile_replicasets,
    reconcile_statefulsets,
    reconcile_daemonsets,
)


def reconcile_all(ctx: StepContext, rounds: int = 4) -> None:
    """Run every controller until nothing changes (or ``rounds`` passes)."""
    for _ in range(rounds):
        before = ctx.writer.changes
        # One index per round: what a controller creates is seen by the others next round.
        ctx.index_pods()
        for controller in _CONTROLLERS:
            controller(ctx)
        if ctx.writer.changes == before:
            return
