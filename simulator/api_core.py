"""The API server's verbs on the store, independent of HTTP.

``ApiCore`` does what kube-apiserver's generic registry does between decoding a request and
encoding the answer: admission, optimistic concurrency, subresources (``status``, ``scale``,
``resize``), CRD registration and custom-object schemas. The HTTP layer (``api_http``) only
parses requests and writes responses.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from runtime.clock import Clock
from simulator.admission import admit_create, admit_update, validate_resize
from simulator.crds import crd_conditions, types_of_crd, validate_crd
from simulator.errors import ApiError
from simulator.jsonpath import get_path, set_path
from simulator.objects import KubeObject, clone, rfc3339
from simulator.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from simulator.resources import COMPUTED_GROUPS, ResourceType, TypeRegistry
from simulator.schema import apply_schema
from simulator.selectors import FieldSelector, LabelSelector, selector_to_string
from simulator.store import ObjectStore, Stored

__all__ = ["PATCH_TYPES", "ApiCore", "ListResult"]

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply",
}

NAMESPACES_KEY = ("", "namespaces")
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")

# Computes metrics.k8s.io objects on request: (resource type, namespace, name or None).
MetricsProvider = Callable[[ResourceType, str, str | None], list[KubeObject]]


@dataclass
class ListResult:
    """A page of a list: objects, the list's resourceVersion, the continue token."""

    items: list[Stored]
    resource_version: int
    continue_token: str
    remaining: int | None


def _encode_continue(rv: int, namespace: str, name: str) -> str:
    data = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": [namespace, name]})
    return base64.urlsafe_b64encode(data.encode()).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        ns, name = data["start"]
        return str(ns), str(name)
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise ApiError.bad_request(f"continue key is not valid: {e}") from e


class ApiCore:
    """Verbs on stored objects, with the real server's checks and side effects."""

    def __init__(
        self,
        store: ObjectStore,
        registry: TypeRegistry,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.rng = rng or random.Random(0)
        self.metrics_provider: MetricsProvider | None = None

    @property
    def pod_resize(self) -> bool:
        """Whether ``pods/resize`` is served (Kubernetes 1.33+, InPlacePodVerticalScaling)."""
        pods = self.registry.get("", "v1", "pods")
        return pods is not None and "resize" in pods.subresources

    def serve_pod_resize(self, enabled: bool) -> None:
        """Serve ``pods/resize`` or not; off, discovery omits it and a request gets the 404 of
        a server without the feature."""
        pods = self.registry.get("", "v1", "pods")
        assert pods is not None
        subresources = pods.subresources | {"resize"} if enabled else pods.subresources - {"resize"}
        self.registry.add(dataclasses.replace(pods, subresources=frozenset(subresources)))

    # -- reads -----------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> Stored:
        """The stored object; 404 when missing."""
        self._check_computed(rt, "get")
        stored = self.store.get(rt.storage_key, namespace if rt.namespaced else "", name)
        if stored is None:
            raise ApiError.not_found(rt.group_resource, name, rt.kind)
        return stored

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> ListResult:
        """Matching objects in (namespace, name) order, paged by ``limit``/``continue``."""
        self._check_computed(rt, "list")
        labels = LabelSelector.parse(label_selector)
        fields = FieldSelector.parse(field_selector, rt.kind)
        after = _decode_continue(continue_token) if continue_token else None
        ns = namespace if rt.namespaced else None
        items: list[Stored] = []
        rv = self.store.resource_version
        more = False
        filtered = not labels.empty or not fields.empty
        for stored in self.store.items(rt.storage_key, ns, after):
            obj = stored.obj
            if not labels.empty and not labels.matches(obj["metadata"].get("labels") or {}):
                continue
            if not fields.empty and not fields.matches(obj):
                continue
            if limit and len(items) >= limit:
                more = True
                break
            items.append(stored)
        token = ""
        remaining: int | None = None
        if more:
            m = items[-1].obj["metadata"]
            last_key = (m.get("namespace", ""), m["name"])
            token = _encode_continue(rv, *last_key)
            # As the real server: a count only when no selector makes it expensive to know.
            if not filtered:
                remaining = self.store.count_after(rt.storage_key, ns, last_key)
        return ListResult(items, rv, token, remaining)

    def _check_computed(self, rt: ResourceType, verb: str) -> None:
        if rt.group in COMPUTED_GROUPS and verb not in rt.verbs:
            raise ApiError.method_not_allowed(verb, rt.group_resource)

    def computed(self, rt: ResourceType, namespace: str, name: str | None) -> list[KubeObject]:
        """Objects of a computed group (metrics.k8s.io); 404 for a missing name."""
        if self.metrics_provider is None:
            raise ApiError(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request (metrics are not available)",
            )
        objects = self.metrics_provider(rt, namespace, name)
        if name is not None and not objects:
            raise ApiError.not_found(rt.group_resource, name, rt.kind)
        return objects

    # -- writes ----------------------------------------------------------------------------

    def _check_namespace(self, rt: ResourceType, namespace: str) -> None:
        if rt.namespaced and self.store.get(NAMESPACES_KEY, "", namespace) is None:
            raise ApiError.not_found("namespaces", namespace, "namespaces")

    def _check_writable(self, rt: ResourceType) -> None:
        if rt.group in COMPUTED_GROUPS:
            raise ApiError.method_not_allowed("write", rt.group_resource)

    def create(self, rt: ResourceType, namespace: str, body: Any) -> Stored:
        """Admit and store a new object."""
        self._check_writable(rt)
        self._check_namespace(rt, namespace)
        obj = admit_create(rt, body, namespace, self.clock.now(), self.rng)
        if rt.custom:
            obj = self._apply_schema(rt, obj)
        if rt.storage_key == CRD_KEY:
            validate_crd(obj)
            self._check_crd_conflicts(obj)
            obj["status"] = crd_conditions(obj, rfc3339(self.clock.now()))
        stored = self.store.create(rt.storage_key, rt.group_resource, obj)
        if rt.storage_key == CRD_KEY:
            self._register_crd(stored.obj)
        return self.versioned(rt, stored)

    def replace(
        self, rt: ResourceType, namespace: str, name: str, body: Any, subresource: str = ""
    ) -> Stored:
        """PUT: a full replacement of the object or of a subresource."""
        self._check_writable(rt)
        if subresource == "scale":
            return self._write_scale(rt, namespace, name, body)
        current = self.get(rt, namespace, name)
        if not isinstance(body, dict):
            raise ApiError.bad_request("the request body must be a JSON object")
        body_meta = body.get("metadata") or {}
        if body_meta.get("name") not in (None, name):
            raise ApiError.bad_request(
                f"the name of the object ({body_meta.get('name')}) does not match the name on "
                f"the URL ({name})"
            )
        if rt.namespaced and body_meta.get("namespace") not in (None, "", namespace):
            raise ApiError.bad_request(
                "the namespace of the provided object does not match "
                "the namespace sent on the request"
            )
        return self._store_update(rt, current.obj, clone(body), subresource)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: bytes,
        subresource: str = "",
    ) -> Stored:
        """PATCH in any of the four patch formats."""
        self._check_writable(rt)
        kind = PATCH_TYPES.get(content_type.split(";", maxsplit=1)[0].strip())
        if kind is None:
            raise ApiError.unsupported_media_type(content_type)
        if kind == "strategic" and rt.custom:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "strategic merge patch is not supported "
                "for custom resources; use a JSON merge patch or a JSON patch",
            )
        try:
            patch_doc = yaml.safe_load(body) if kind == "apply" else json.loads(body or b"null")
        except (ValueError, yaml.YAMLError) as e:
            raise ApiError.bad_request(f"error decoding patch: {e}") from e
        if kind == "apply":
            return self._apply(rt, namespace, name, patch_doc, subresource)
        if subresource == "scale":
            scale = self._scale_of(rt, self.get(rt, namespace, name).obj)
            patched = self._patched(scale, patch_doc, kind)
            return self._write_scale(rt, namespace, name, patched)
        current = self.get(rt, namespace, name)
        patched = self._patched(clone(current.obj), patch_doc, kind)
        if not isinstance(patched, dict):
            raise ApiError.bad_request("the patch turned the object into a non-object")
        meta = patched.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        # A resourceVersion inside the patch is a precondition; otherwise the patch applies
        # to whatever is current.
        patch_meta = patch_doc.get("metadata") if isinstance(patch_doc, dict) else None
        if not (isinstance(patch_meta, dict) and patch_meta.get("resourceVersion")) and kind != (
            "json"
        ):
            meta.pop("resourceVersion", None)
        return self._store_update(rt, current.obj, patched, subresource)

    def _patched(self, target: Any, patch_doc: Any, kind: str) -> Any:
        try:
            if kind == "merge":
                if not isinstance(patch_doc, dict):
                    raise PatchError("a merge patch must be a JSON object")
                return merge_patch(target, patch_doc)
            if kind == "json":
                return json_patch(target, patch_doc)
            if not isinstance(patch_doc, dict):
                raise PatchError("a strategic merge patch must be a JSON object")
            return strategic_merge_patch(target, patch_doc)
        except PatchError as e:
            raise ApiError(422, "Invalid", f"the patch could not be applied: {e}") from e

    def _apply(
        self, rt: ResourceType, namespace: str, name: str, doc: Any, subresource: str
    ) -> Stored:
        """Server-side apply, simplified: create if missing, else a merge of the fields sent."""
        if not isinstance(doc, dict):
            raise ApiError.bad_request("an apply patch must be an object")
        current = self.store.get(rt.storage_key, namespace if rt.namespaced else "", name)
        if current is None:
            doc.setdefault("metadata", {})["name"] = name
            return self.create(rt, namespace, doc)
        patched = merge_patch(clone(current.obj), doc)
        patched["metadata"].pop("resourceVersion", None)
        return self._store_update(rt, current.obj, patched, subresource)

    def _store_update(
        self, rt: ResourceType, old: KubeObject, new: KubeObject, subresource: str
    ) -> Stored:
        if subresource == "resize":
            new = validate_resize(old, new)
        elif subresource not in ("", "status"):
            raise ApiError.method_not_allowed("update", f"{rt.group_resource}/{subresource}")
        else:
            if subresource == "status" and not rt.has_status:
                raise ApiError.no_route(f"{rt.group_resource}/status")
            new = admit_update(rt, old, new, subresource)
        if rt.custom:
            new = self._apply_schema(rt, new)
        if rt.storage_key == CRD_KEY and subresource == "":
            validate_crd(new)
            if (
                new["spec"]["group"] != old["spec"]["group"]
                or new["spec"]["names"]["plural"] != old["spec"]["names"]["plural"]
            ):
                raise ApiError.invalid(
                    "CustomResourceDefinition",
                    "apiextensions.k8s.io",
                    old["metadata"]["name"],
                    [("spec.names.plural", "Invalid value: field is immutable")],
                )
        stored = self.store.update(rt.storage_key, rt.group_resource, new)
        if rt.storage_key == CRD_KEY:
            self._register_crd(stored.obj)
        return self.versioned(rt, stored)

    def delete(
        self, rt: ResourceType, namespace: str, name: str, options: dict[str, Any] | None = None
    ) -> Stored:
        """Remove the object (dependents go with the garbage collector's next pass)."""
        self._check_writable(rt)
        preconditions = (options or {}).get("preconditions") or {}
        if rt.storage_key == NAMESPACES_KEY and name in ("default", "kube-system"):
            raise ApiError(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
            )
        stored = self.store.delete(
            rt.storage_key,
            rt.group_resource,
            namespace if rt.namespaced else "",
            name,
            preconditions.get("resourceVersion"),
            preconditions.get("uid"),
        )
        if rt.storage_key == NAMESPACES_KEY:
            self._delete_namespace_contents(name)
        if rt.storage_key == CRD_KEY:
            spec = stored.obj["spec"]
            self.registry.remove_group_resource(spec["group"], spec["names"]["plural"])
            self.store.drop_key((spec["group"], spec["names"]["plural"]))
        return stored

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
    ) -> list[Stored]:
        """Delete every object a list with the same selectors would return."""
        result = self.list_objects(rt, namespace, label_selector, field_selector)
        return [
            self.delete(rt, s.obj["metadata"].get("namespace", ""), s.obj["metadata"]["name"])
            for s in result.items
        ]

    def _delete_namespace_contents(self, namespace: str) -> None:
        for rt in self.registry:
            if not rt.namespaced or rt.group in COMPUTED_GROUPS:
                continue
            for stored in list(self.store.items(rt.storage_key, namespace)):
                self.store.delete(
                    rt.storage_key, rt.group_resource, namespace, stored.obj["metadata"]["name"]
                )

    # -- scale -----------------------------------------------------------------------------

    def _scale_paths(self, rt: ResourceType) -> tuple[str, str, str | None]:
        if "scale" not in rt.subresources:
            raise ApiError.no_route(f"{rt.group_resource}/scale")
        if rt.scale is not None:
            return rt.scale.spec_replicas, rt.scale.status_replicas, rt.scale.label_selector
        return ".spec.replicas", ".status.replicas", None

    def _scale_of(self, rt: ResourceType, obj: KubeObject) -> KubeObject:
        spec_path, status_path, selector_path = self._scale_paths(rt)
        m = obj["metadata"]
        if selector_path is not None:
            selector = get_path(obj, selector_path) or ""
        else:
            selector = selector_to_string(obj.get("spec", {}).get("selector"))
        status: dict[str, Any] = {"replicas": int(get_path(obj, status_path) or 0)}
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: m[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in m
            },
            "spec": {"replicas": int(get_path(obj, spec_path) or 0)},
            "status": status,
        }

    def get_scale(self, rt: ResourceType, namespace: str, name: str) -> KubeObject:
        """The ``autoscaling/v1 Scale`` of a scalable object."""
        self._scale_paths(rt)
        return self._scale_of(rt, self.get(rt, namespace, name).obj)

    def _write_scale(self, rt: ResourceType, namespace: str, name: str, scale: Any) -> Stored:
        spec_path, _, _ = self._scale_paths(rt)
        current = self.get(rt, namespace, name)
        if not isinstance(scale, dict):
            raise ApiError.bad_request("the request body must be a Scale object")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError.invalid(
                "Scale",
                "autoscaling",
                name,
                [
                    (
                        "spec.replicas",
                        f"Invalid value: {replicas}: must be greater than or equal to 0",
                    )
                ],
            )
        expected = (scale.get("metadata") or {}).get("resourceVersion")
        if expected and str(expected) != str(current.rv):
            raise ApiError.conflict(rt.group_resource, name)
        new = clone(current.obj)
        set_path(new, spec_path, replicas)
        new["metadata"].pop("resourceVersion", None)
        return self._store_update(rt, current.obj, new, "")

    # -- custom resources ------------------------------------------------------------------

    def _apply_schema(self, rt: ResourceType, obj: KubeObject) -> KubeObject:
        if rt.schema is None:
            return obj
        causes: list[tuple[str, str]] = []
        schema = dict(rt.schema)
        properties = dict(schema.get("properties") or {})
        # apiVersion, kind and metadata are the server's business, whatever the schema says.
        for key in ("apiVersion", "kind", "metadata"):
            properties[key] = {"x-kubernetes-preserve-unknown-fields": True}
        schema["properties"] = properties
        result = apply_schema(obj, schema, "", causes)
        if causes:
            raise ApiError.invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), causes)
        assert isinstance(result, dict)
        return result

    def _check_crd_conflicts(self, crd: KubeObject) -> None:
        spec = crd["spec"]
        for v in spec["versions"]:
            existing = self.registry.get(spec["group"], v["name"], spec["names"]["plural"])
            if existing is not None and not existing.custom:
                raise ApiError.invalid(
                    "CustomResourceDefinition",
                    "apiextensions.k8s.io",
                    crd["metadata"]["name"],
                    [
                        (
                            "spec.names.plural",
                            "Invalid value: a built-in resource of that name exists",
                        )
                    ],
                )

    def _register_crd(self, crd: KubeObject) -> None:
        spec = crd["spec"]
        self.registry.remove_group_resource(spec["group"], spec["names"]["plural"])
        for t in types_of_crd(crd):
            self.registry.add(t)

    def versioned(self, rt: ResourceType, stored: Stored) -> Stored:
        """Custom objects are stored once and served at whichever version was asked for."""
        if not rt.custom or stored.obj.get("apiVersion") == rt.api_version:
            return stored
        obj = dict(stored.obj)
        obj["apiVersion"] = rt.api_version
        return Stored(obj, json.dumps(obj, separators=(",", ":")).encode(), stored.rv)
