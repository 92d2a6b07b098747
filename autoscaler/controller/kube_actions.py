"""The controller's writes to the Kubernetes API: scale, resize, template, events, status.

Every call goes through :func:`collectors.kube.call` (threads, retries with backoff on the
clock, one error type). Scaling is optimistic: the ``Scale`` is read, checked and written
back with its ``resourceVersion``; a 409 Conflict re-reads and tries again, so a concurrent
writer is never overwritten blindly and the bounds are checked against what is really there.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from autoscaler.resource.model import GROUP, KIND, PLURAL, VERSION, PredictiveAutoscalerStatus
from collectors.kube import KubeApiError, call
from runtime.backoff import Backoff
from runtime.clock import Clock, to_datetime
from runtime.quantity import format_bytes, format_cpu

__all__ = [
    "CONFLICT_ATTEMPTS",
    "KubeActions",
    "ScaleResult",
    "format_resource",
    "resize_unserved",
    "round_request",
]

log = logging.getLogger(__name__)

CONFLICT = 409
NOT_FOUND = 404
METHOD_NOT_ALLOWED = 405
CONFLICT_ATTEMPTS = 5


def resize_unserved(error: KubeApiError) -> bool:
    """Whether a ``pods/resize`` call failed because the server does not serve the subresource
    (before Kubernetes 1.33, or with InPlacePodVerticalScaling off), not because of the pod:
    405, or the 404 with no route (a missing pod says ``pods "name" not found``)."""
    if error.status == METHOD_NOT_ALLOWED:
        return True
    return error.status == NOT_FOUND and error.reason.startswith(
        "the server could not find the requested resource"
    )


def round_request(resource: str, value: float) -> float:
    """A request rounded up to what people write: whole millicores, whole MiB."""
    if resource == "cpu":
        return math.ceil(value * 1000 - 1e-9) / 1000
    return float(math.ceil(value / 2**20 - 1e-9) * 2**20)


def format_resource(resource: str, value: float) -> str:
    """A request as Kubernetes writes it (``250m``, ``512Mi``), rounded up."""
    rounded = round_request(resource, value)
    return format_cpu(rounded) if resource == "cpu" else format_bytes(rounded)


def _container_resources(
    name: str, requests: dict[str, float], limits: dict[str, float]
) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "requests": {r: format_resource(r, v) for r, v in requests.items()}
    }
    if limits:
        resources["limits"] = {r: format_resource(r, v) for r, v in limits.items()}
    return {"name": name, "resources": resources}


@dataclass(frozen=True)
class ScaleResult:
    """What a scale call found and did."""

    before: int
    after: int
    changed: bool


class KubeActions:
    """Writes of the controller, with retries and optimistic concurrency."""

    def __init__(
        self, api: k8s.ApiClient, clock: Clock, retry: Backoff, timeout_s: float = 30.0
    ) -> None:
        self._timeout = timeout_s
        self._apps = k8s.AppsV1Api(api)
        self._core = k8s.CoreV1Api(api)
        self._custom = k8s.CustomObjectsApi(api)
        self._clock = clock
        self._retry = retry

    async def _call(self, fn: Any, *args: Any, what: str) -> Any:
        # A hung request must not hold the controller: it times out and is retried.
        return await call(
            fn,
            *args,
            clock=self._clock,
            retry=self._retry,
            what=what,
            _request_timeout=self._timeout,
        )

    # -- reads ---------------------------------------------------------------------------

    async def list_autoscalers(self) -> list[dict[str, Any]]:
        """Every PredictiveAutoscaler in the cluster, as raw objects."""
        listed = await self._call(
            self._custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL,
            what="list predictiveautoscalers",
        )
        items: list[dict[str, Any]] = listed.get("items", [])
        return items

    async def vertical_pod_autoscalers(self) -> list[dict[str, Any]]:
        """VPA objects, if the VPA's CRD is installed (else none)."""
        try:
            listed = await self._call(
                self._custom.list_cluster_custom_object,
                "autoscaling.k8s.io",
                "v1",
                "verticalpodautoscalers",
                what="list verticalpodautoscalers",
            )
        except KubeApiError as e:
            if e.status == NOT_FOUND:
                return []
            raise
        items: list[dict[str, Any]] = listed.get("items", [])
        return items

    # -- replicas ------------------------------------------------------------------------

    def _scale_functions(self, kind: str) -> tuple[Any, Any]:
        if kind == "StatefulSet":
            return (
                self._apps.read_namespaced_stateful_set_scale,
                self._apps.replace_namespaced_stateful_set_scale,
            )
        return (
            self._apps.read_namespaced_deployment_scale,
            self._apps.replace_namespaced_deployment_scale,
        )

    async def scale(
        self, namespace: str, kind: str, name: str, replicas: int, bounds: tuple[int, int]
    ) -> ScaleResult:
        """Set ``replicas`` through the ``/scale`` subresource, never outside ``bounds``."""
        low, high = bounds
        if not low <= replicas <= high:
            raise ValueError(f"refusing to scale {kind}/{name} to {replicas}: outside {bounds}")
        read, replace = self._scale_functions(kind)
        what = f"scale {kind.lower()} {namespace}/{name}"
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            scale = await self._call(read, name, namespace, what=f"read {what}")
            before = int(scale.spec.replicas or 0)
            if before == replicas:
                return ScaleResult(before, before, False)
            scale.spec.replicas = replicas
            log.debug("%s: writing %d -> %d replicas", what, before, replicas)
            try:
                await self._call(replace, name, namespace, scale, what=what)
            except KubeApiError as e:
                if e.status != CONFLICT or attempt == CONFLICT_ATTEMPTS:
                    raise
                log.info("%s: conflict (attempt %d), re-reading", what, attempt)
                continue
            return ScaleResult(before, replicas, True)
        raise AssertionError("unreachable")

    # -- requests ------------------------------------------------------------------------

    async def resize_pod(
        self,
        namespace: str,
        pod: str,
        container: str,
        requests: dict[str, float],
        limits: dict[str, float],
    ) -> None:
        """Change a running container's requests and limits in place (``pods/resize``)."""
        body = {"spec": {"containers": [_container_resources(container, requests, limits)]}}
        await self._call(
            self._core.patch_namespaced_pod_resize,
            pod,
            namespace,
            body,
            what=f"resize pod {namespace}/{pod}",
        )

    async def patch_template(
        self,
        namespace: str,
        kind: str,
        name: str,
        resources: dict[str, tuple[dict[str, float], dict[str, float]]],
    ) -> None:
        """Set containers' (requests, limits) in the pod template (a rolling restart follows)."""
        containers = [
            _container_resources(container, requests, limits)
            for container, (requests, limits) in resources.items()
        ]
        body = {"spec": {"template": {"spec": {"containers": containers}}}}
        fn = (
            self._apps.patch_namespaced_stateful_set
            if kind == "StatefulSet"
            else self._apps.patch_namespaced_deployment
        )
        await self._call(fn, name, namespace, body, what=f"patch template {namespace}/{name}")

    # -- status and events ---------------------------------------------------------------

    async def write_status(
        self, namespace: str, name: str, status: PredictiveAutoscalerStatus
    ) -> None:
        """Write the autoscaler's status (merge patch of ``/status``: fields left None keep
        what they held)."""
        await self._call(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": status.to_api()},
            what=f"write status of {namespace}/{name}",
        )

    async def event(
        self, namespace: str, name: str, uid: str, reason: str, message: str, warning: bool = False
    ) -> None:
        """A Kubernetes Event on the autoscaler; failures are logged, never fatal."""
        now = to_datetime(self._clock.now())
        body = k8s.CoreV1Event(
            metadata=k8s.V1ObjectMeta(generate_name=f"{name}.", namespace=namespace),
            involved_object=k8s.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}", kind=KIND, name=name, namespace=namespace, uid=uid
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=k8s.V1EventSource(component="foresight"),
        )
        try:
            await self._call(
                self._core.create_namespaced_event, namespace, body, what="create event"
            )
        except KubeApiError as e:
            log.warning("cannot record event %s on %s/%s: %s", reason, namespace, name, e)
