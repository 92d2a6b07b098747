"""The API server's HTTP face: routing, content negotiation, watch streams, errors.

Groups registered by an ``APIService`` with a Service are proxied to it
(:mod:`simulator.aggregation`); the HPA controller that reads them
(:mod:`simulator.hpa`) runs as long as the application does.

Every failure leaves through ``_error_response`` as a Kubernetes ``Status`` with its code;
an unexpected exception is logged and answered as a 500 ``Status`` (never a traceback page).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web
from pydantic import ValidationError

from runtime.clock import Clock
from simulator.aggregation import Aggregator, Caller, publish_front_proxy
from simulator.api_core import ApiCore
from simulator.discovery import (
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    version_info,
)
from simulator.errors import ApiError
from simulator.faults import FaultAction, FaultInjector, FaultSpec
from simulator.hpa import HorizontalPodAutoscalers
from simulator.objects import KubeObject
from simulator.openapi import openapi_v3_group, openapi_v3_index
from simulator.rbac import (
    ACCESS_REVIEW_PATH,
    ADMIN_USER,
    SELF_REVIEW_PATH,
    TOKEN_REVIEW_PATH,
    Reviews,
)
from simulator.resources import COMPUTED_GROUPS, ResourceType
from simulator.selectors import FieldSelector, LabelSelector
from simulator.store import Stored, WatchEvent, encode
from simulator.tables import build_table

__all__ = ["ApiServerApp", "NodeProxy", "Route", "parse_route"]

log = logging.getLogger("simulator.api")

# Proxies ``/api/v1/nodes/{node}/proxy/{path}`` to a kubelet: (node, path, query) → response.
NodeProxy = Callable[[str, str, str], Awaitable[web.Response]]

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
DEFAULT_WATCH_TIMEOUT = 1800.0
BOOKMARK_INTERVAL = 60.0


@dataclass(frozen=True)
class Route:
    """A parsed resource path."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str
    rest: str  # what follows a subresource (the proxied path)
    watch_prefix: bool


def parse_route(
    segments: list[str], group: str, version: str, namespaced_plurals: set[str]
) -> Route | None:
    """The route of ``segments`` after ``/api/v1`` or ``/apis/g/v``; None if not a resource."""
    watch = False
    if segments and segments[0] == "watch":
        watch, segments = True, segments[1:]
    if not segments:
        return None
    namespace = None
    if segments[0] == "namespaces" and len(segments) >= 3 and segments[2] in namespaced_plurals:
        namespace, segments = segments[1], segments[2:]
    plural = segments[0]
    name = segments[1] if len(segments) > 1 else None
    sub = segments[2] if len(segments) > 2 else ""
    rest = "/".join(segments[3:])
    if name == "":
        name = None
    return Route(group, version, plural, namespace, name, sub, rest, watch)


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept


class ApiServerApp:
    """The aiohttp application of the API server."""

    def __init__(
        self,
        core: ApiCore,
        clock: Clock,
        faults: FaultInjector,
        token: str | None = None,
        node_proxy: NodeProxy | None = None,
        on_fault: Callable[[FaultSpec], None] | None = None,
    ) -> None:
        self.core = core
        self.clock = clock
        self.faults = faults
        self.token = token
        self.node_proxy = node_proxy
        self.on_fault = on_fault
        self.address = "127.0.0.1:6443"
        # TokenRequest, TokenReview and SubjectAccessReview; it also serves the RBAC kinds.
        self.reviews = Reviews(core, token)
        self._hang = asyncio.Event()
        # APIService routing, and the HPA controller reading what it routes to; a test may
        # set ``aggregator.front_proxy`` or ``hpa.sync_seconds`` before the server starts.
        self.aggregator = Aggregator(core)
        self.hpa = HorizontalPodAutoscalers(core, clock, self.aggregator, token=token)
        self.app = web.Application(client_max_size=16 * 2**20)
        self.app.router.add_route("*", "/{tail:.*}", self._handle)
        self.app.cleanup_ctx.append(self._controllers)

    async def _controllers(self, _: web.Application) -> AsyncIterator[None]:
        if self.aggregator.front_proxy is not None:
            publish_front_proxy(self.core, self.aggregator.front_proxy)
        task = asyncio.get_running_loop().create_task(self.hpa.run(), name="simulator-hpa")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self.aggregator.close()

    def stop_hanging(self) -> None:
        """Release requests held by ``timeout`` faults (at shutdown)."""
        self._hang.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            probe = request.path in ("/healthz", "/livez", "/readyz")
            if self.token is not None and not probe and _bearer(request) != self.token:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return await self._dispatch(request)
        except ApiError as e:
            return _error_response(e)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.path)
            return _error_response(
                ApiError(
                    500,
                    "InternalError",
                    "an error on the server prevented the request from succeeding",
                )
            )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        segments = [s for s in path.split("/") if s]
        method = request.method
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/version":
            return _json(version_info())
        if segments[:1] == ["openapi"]:
            return self._openapi(segments)
        if segments[:2] == ["simulator", "v1"]:
            return await self._simulator_api(request, segments[2:])
        if segments in (TOKEN_REVIEW_PATH, ACCESS_REVIEW_PATH, SELF_REVIEW_PATH):
            if method != "POST":
                raise ApiError.method_not_allowed(method, path)
            action = self.faults.api_action("create", segments[3], self.clock.now())
            if action is not None:
                await self._apply_fault(action)
            body = await _body(request)
            if segments == TOKEN_REVIEW_PATH:
                return _json(self.reviews.token_review(body), 201)
            if segments == SELF_REVIEW_PATH:
                return _json(self.reviews.self_access_review(body, _bearer(request)), 201)
            return _json(self.reviews.access_review(body), 201)
        if segments == ["api"]:
            return _json(api_versions(self.address))
        if segments == ["apis"]:
            groups = api_group_list(self.core.registry)
            groups["groups"].extend(
                _aggregated_group(g, vs)
                for g, vs in self.aggregator.groups().items()
                if self.core.registry.groups().get(g) is None
            )
            return _json(groups)
        if segments[:1] == ["apis"] and len(segments) >= 3:
            apiservice = self.aggregator.find(segments[1], segments[2])
            if apiservice is not None:
                return await self._aggregated(request, apiservice)
        if segments[:1] == ["api"] and len(segments) >= 2:
            group, version, rest = "", segments[1], segments[2:]
        elif segments[:1] == ["apis"] and len(segments) >= 2:
            if len(segments) == 2:
                doc = api_group(self.core.registry, segments[1])
                versions = self.aggregator.groups().get(segments[1])
                if doc is None and versions:
                    doc = {"kind": "APIGroup", "apiVersion": "v1"}
                    doc.update(_aggregated_group(segments[1], versions))
                if doc is None:
                    raise ApiError.no_route(path)
                return _json(doc)
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            raise ApiError.no_route(path)
        if not rest:
            doc = api_resource_list(self.core.registry, group, version)
            if doc is None:
                raise ApiError.no_route(path)
            return _json(doc)
        namespaced = {
            t.plural for t in self.core.registry.in_group_version(group, version) if t.namespaced
        }
        route = parse_route(rest, group, version, namespaced)
        if route is None:
            raise ApiError.no_route(path)
        rt = self.core.registry.get(group, version, route.plural)
        if rt is None:
            raise ApiError.no_route(path)
        if route.namespace is not None and not rt.namespaced:
            raise ApiError.no_route(path)
        verb = _verb(method, route, request)
        action = self.faults.api_action(verb, rt.plural, self.clock.now())
        if action is not None:
            await self._apply_fault(action)
        if rt.kind == "ServiceAccount" and route.subresource == "token" and route.name:
            if verb != "create":
                raise ApiError.method_not_allowed(method, path)
            body = await _body(request)
            return _json(self.reviews.request_token(route.namespace or "", route.name, body), 201)
        return await self._resource(request, rt, route, verb)

    async def _aggregated(self, request: web.Request, apiservice: KubeObject) -> web.Response:
        """Proxy to the APIService's backend, as the caller (the simulator's only user)."""
        caller = Caller(
            str(ADMIN_USER["username"]),
            tuple(str(g) for g in ADMIN_USER["groups"]),
            request.headers.get("Authorization"),
        )
        body = await request.read() if request.can_read_body else None
        code, content, headers = await self.aggregator.forward(
            apiservice,
            request.method,
            request.path_qs,
            caller,
            request.headers.get("Accept"),
            body,
        )
        return web.Response(body=content, status=code, headers=headers)

    async def _apply_fault(self, action: FaultAction) -> None:
        if action.kind == "timeout":
            await self._hang.wait()
            raise ApiError(504, "Timeout", "the request timed out (injected fault)")
        if action.kind == "slow":
            await asyncio.sleep(action.delay)
            return
        headers = {}
        if action.retry_after is not None:
            headers["Retry-After"] = str(int(action.retry_after))
        reason = {429: "TooManyRequests", 503: "ServiceUnavailable", 504: "Timeout"}.get(
            action.code, "InternalError"
        )
        raise ApiError(
            action.code,
            reason,
            f"injected fault: HTTP {action.code}",
            {"retryAfterSeconds": int(action.retry_after or 0)},
            headers,
        )

    async def _resource(
        self, request: web.Request, rt: ResourceType, route: Route, verb: str
    ) -> web.StreamResponse:
        core = self.core
        ns = route.namespace or ""
        if (
            rt.namespaced
            and route.namespace is None
            and verb not in ("list", "watch", "deletecollection")
        ):
            raise ApiError.method_not_allowed(
                request.method, f"{rt.group_resource} without a namespace"
            )
        if route.subresource and route.subresource not in rt.subresources:
            raise ApiError.no_subresource()
        if route.subresource == "proxy":
            return await self._proxy(request, rt, route)
        query = request.query
        if rt.group in COMPUTED_GROUPS:
            if verb not in ("get", "list"):
                raise ApiError.method_not_allowed(request.method, rt.group_resource)
            objects = core.computed(rt, ns if route.namespace is not None else "", route.name)
            if route.name is not None:
                return _json(objects[0])
            return _json(
                {
                    "kind": rt.list_kind,
                    "apiVersion": rt.api_version,
                    "metadata": {},
                    "items": objects,
                }
            )
        if verb == "watch":
            return await self._watch(request, rt, route.namespace, query)
        if verb == "list":
            return self._list(request, rt, route.namespace, query)
        if verb == "deletecollection":
            deleted = core.delete_collection(
                rt, route.namespace, query.get("labelSelector"), query.get("fieldSelector")
            )
            return _json(
                {
                    "kind": rt.list_kind,
                    "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(core.store.resource_version)},
                    "items": [s.obj for s in deleted],
                }
            )
        assert route.name is not None or verb == "create"
        if verb == "create":
            if route.name is not None:
                raise ApiError.method_not_allowed("POST", request.path)
            stored = core.create(rt, ns, await _body(request))
            return self._object(request, rt, stored.obj, 201, stored)
        name = route.name
        assert name is not None
        if verb == "get":
            if route.subresource == "scale":
                return _json(core.get_scale(rt, ns, name))
            stored = core.get(rt, ns, name)
            return self._object(request, rt, stored.obj, 200, core.versioned(rt, stored))
        if verb == "update":
            stored = core.replace(rt, ns, name, await _body(request), route.subresource)
        elif verb == "patch":
            stored = core.patch(
                rt, ns, name, request.content_type, await request.read(), route.subresource
            )
        elif verb == "delete":
            options = await _body(request) if request.can_read_body else None
            stored = core.delete(rt, ns, name, options if isinstance(options, dict) else None)
            if rt.kind == "Pod":
                return self._object(request, rt, stored.obj, 200, stored)
            return _json(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": rt.group,
                        "kind": rt.plural,
                        "uid": stored.obj["metadata"].get("uid"),
                    },
                }
            )
        else:
            raise ApiError.method_not_allowed(request.method, request.path)
        if route.subresource == "scale":
            return _json(core.get_scale(rt, ns, name))
        return self._object(request, rt, stored.obj, 200, stored)

    def _object(
        self,
        request: web.Request,
        rt: ResourceType,
        obj: KubeObject,
        code: int,
        stored: Stored | None,
    ) -> web.Response:
        if _wants_table(request):
            table = build_table(
                rt,
                [obj],
                self.clock.now(),
                request.query.get("includeObject", "Metadata"),
                {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
            )
            return _json(table, code)
        body = stored.raw if stored is not None else encode(obj)
        return web.Response(body=body, status=code, content_type=JSON)

    def _list(
        self, request: web.Request, rt: ResourceType, namespace: str | None, query: Any
    ) -> web.Response:
        try:
            limit = int(query.get("limit") or 0)
        except ValueError as e:
            raise ApiError.bad_request(f"invalid limit: {query.get('limit')!r}") from e
        result = self.core.list_objects(
            rt,
            namespace,
            query.get("labelSelector"),
            query.get("fieldSelector"),
            limit,
            query.get("continue"),
        )
        list_meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            list_meta["continue"] = result.continue_token
            if result.remaining is not None:
                list_meta["remainingItemCount"] = result.remaining
        if _wants_table(request):
            table = build_table(
                rt,
                (self.core.versioned(rt, s).obj for s in result.items),
                self.clock.now(),
                query.get("includeObject", "Metadata"),
                list_meta,
            )
            return _json(table)
        head = (
            b'{"kind":"'
            + rt.list_kind.encode()
            + b'","apiVersion":"'
            + rt.api_version.encode()
            + b'","metadata":'
            + encode(list_meta)
            + b',"items":['
        )
        items = b",".join(self.core.versioned(rt, s).raw for s in result.items)
        return web.Response(body=head + items + b"]}", content_type=JSON)

    async def _watch(
        self, request: web.Request, rt: ResourceType, namespace: str | None, query: Any
    ) -> web.StreamResponse:
        store = self.core.store
        labels = LabelSelector.parse(query.get("labelSelector"))
        fields = FieldSelector.parse(query.get("fieldSelector"), rt.kind)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        table = _wants_table(request)
        try:
            timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        except ValueError as e:
            raise ApiError.bad_request("invalid timeoutSeconds") from e
        rv_text = query.get("resourceVersion") or ""
        key = rt.storage_key

        def wanted(event: WatchEvent) -> bool:
            if rt.namespaced and namespace is not None and event.namespace != namespace:
                return False
            obj = event.stored.obj
            if not labels.empty and not labels.matches(obj["metadata"].get("labels") or {}):
                return False
            return fields.empty or fields.matches(obj)

        def line(event: WatchEvent) -> bytes:
            if table:
                t = build_table(
                    rt,
                    [event.stored.obj],
                    self.clock.now(),
                    query.get("includeObject", "Metadata"),
                    {"resourceVersion": str(event.rv)},
                )
                return encode({"type": event.type, "object": t}) + b"\n"
            if rt.custom:
                stored = self.core.versioned(rt, event.stored)
                if stored is not event.stored:
                    return encode({"type": event.type, "object": stored.obj}) + b"\n"
            return event.line()

        sub = store.subscribe(key)
        gone: ApiError | None = None
        initial: list[WatchEvent] = []
        if rv_text in ("", "0"):
            for stored in store.items(key, namespace if rt.namespaced else None):
                initial.append(
                    WatchEvent(
                        "ADDED", stored.rv, stored.obj["metadata"].get("namespace", ""), stored
                    )
                )
        else:
            try:
                initial = store.events_since(key, rt.group_resource, int(rv_text))
            except ValueError as e:
                store.unsubscribe(sub)
                raise ApiError.bad_request(f"invalid resourceVersion {rv_text!r}") from e
            except ApiError as e:
                gone = e
        last_rv = store.resource_version
        response = web.StreamResponse(headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            if gone is not None:
                await response.write(encode({"type": "ERROR", "object": gone.status()}) + b"\n")
                return response
            chunk = [line(e) for e in initial if wanted(e)]
            if chunk:
                await response.write(b"".join(chunk))
            await self._stream(response, sub.queue, wanted, line, timeout, bookmarks, rt, last_rv)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            store.unsubscribe(sub)
        return response

    async def _stream(
        self,
        response: web.StreamResponse,
        queue: asyncio.Queue[WatchEvent | None],
        wanted: Callable[[WatchEvent], bool],
        line: Callable[[WatchEvent], bytes],
        watch_seconds: float,
        bookmarks: bool,
        rt: ResourceType,
        last_rv: int,
    ) -> None:
        deadline = asyncio.ensure_future(self.clock.sleep(watch_seconds))
        bookmark: asyncio.Future[None] | None = None
        try:
            while True:
                # Drain what is ready without a task per event: throughput matters here.
                chunk: list[bytes] = []
                while not queue.empty():
                    event = queue.get_nowait()
                    if event is None:
                        if chunk:
                            await response.write(b"".join(chunk))
                        return
                    last_rv = event.rv
                    if wanted(event):
                        chunk.append(line(event))
                if chunk:
                    await response.write(b"".join(chunk))
                if bookmarks and bookmark is None:
                    bookmark = asyncio.ensure_future(self.clock.sleep(BOOKMARK_INTERVAL))
                getter = asyncio.ensure_future(queue.get())
                waiters: set[asyncio.Future[Any]] = {getter, deadline}
                if bookmark is not None:
                    waiters.add(bookmark)
                done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    event = getter.result()
                    if event is None:
                        return
                    last_rv = event.rv
                    if wanted(event):
                        await response.write(line(event))
                else:
                    getter.cancel()
                if deadline in done:
                    return
                if bookmark is not None and bookmark in done:
                    bookmark = None
                    mark = {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": rt.kind,
                            "apiVersion": rt.api_version,
                            "metadata": {"resourceVersion": str(last_rv)},
                        },
                    }
                    await response.write(encode(mark) + b"\n")
        finally:
            for fut in (deadline, bookmark):
                if fut is not None and not fut.done():
                    fut.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fut

    async def _proxy(
        self, request: web.Request, rt: ResourceType, route: Route
    ) -> web.StreamResponse:
        if rt.kind != "Node" or self.node_proxy is None or route.name is None:
            raise ApiError.no_route(request.path)
        if request.method != "GET":
            raise ApiError.method_not_allowed(request.method, request.path)
        self.core.get(rt, "", route.name)
        return await self.node_proxy(route.name, route.rest, request.query_string)

    def _openapi(self, segments: list[str]) -> web.Response:
        registry = self.core.registry
        if segments == ["openapi", "v3"]:
            return _json(openapi_v3_index(registry))
        if len(segments) >= 3 and segments[1] == "v3":
            doc = openapi_v3_group(registry, segments[2:])
            if doc is not None:
                return _json(doc)
        raise ApiError.no_route("/" + "/".join(segments))

    async def _simulator_api(self, request: web.Request, segments: list[str]) -> web.Response:
        """``/simulator/v1/faults``: list (GET), inject (POST) or clear (DELETE) faults;
        ``/simulator/v1/features``: read (GET) or set (PATCH) ``podResize``."""
        if segments == ["features"]:
            return await self._features(request)
        if segments != ["faults"]:
            raise ApiError.no_route(request.path)
        if request.method == "GET":
            return _json(
                {"faults": [f.model_dump(mode="json", by_alias=True) for f in self.faults.faults]}
            )
        if request.method == "DELETE":
            self.faults.clear()
            return _json({"faults": []})
        if request.method != "POST":
            raise ApiError.method_not_allowed(request.method, request.path)
        body = await _body(request)
        if not isinstance(body, dict):
            raise ApiError.bad_request("a fault must be a JSON object")
        try:
            spec = FaultSpec.model_validate(body)
        except ValidationError as e:
            raise ApiError(
                422,
                "Invalid",
                "; ".join(
                    f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
                ),
            ) from e
        # A fault injected at run time starts now unless it says otherwise.
        if "at" not in body:
            spec = spec.model_copy(update={"at": self.clock.now() - self.faults.start})
        if self.on_fault is not None:
            self.on_fault(spec)
        else:
            self.faults.add(spec)
        return _json(spec.model_dump(mode="json", by_alias=True), 201)

    async def _features(self, request: web.Request) -> web.Response:
        if request.method == "PATCH":
            body = await _body(request)
            if not isinstance(body, dict) or set(body) - {"podResize"}:
                raise ApiError.bad_request("features: only 'podResize' (true or false) is known")
            value = body.get("podResize", self.core.pod_resize)
            if not isinstance(value, bool):
                raise ApiError.bad_request("features.podResize: need true or false")
            self.core.serve_pod_resize(value)
        elif request.method != "GET":
            raise ApiError.method_not_allowed(request.method, request.path)
        return _json({"podResize": self.core.pod_resize})


def _verb(method: str, route: Route, request: web.Request) -> str:
    if method == "GET":
        if route.name is None:
            watch = route.watch_prefix or request.query.get("watch") in ("true", "1")
            return "watch" if watch else "list"
        return "watch" if route.watch_prefix else "get"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if route.name is not None else "deletecollection"
    raise ApiError.method_not_allowed(method, request.path)


def _bearer(request: web.Request) -> str | None:
    """The bearer token of a request; the scheme in any case, as the API server reads it
    (the Kubernetes client's in-cluster configuration sends ``bearer``)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _body(request: web.Request) -> Any:
    if request.content_type == PROTOBUF:
        # What a server without protobuf answers; client-go then sends JSON.
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {JSON}, application/yaml (got {PROTOBUF!r})",
        )
    raw = await request.read()
    if not raw:
        raise ApiError.bad_request("the request body is empty")
    try:
        return json.loads(raw)
    except ValueError as e:
        if request.content_type.endswith("yaml"):
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as ye:
                raise ApiError.bad_request(f"invalid YAML body: {ye}") from ye
        raise ApiError.bad_request(f"invalid JSON body: {e}") from e


def _aggregated_group(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=encode(doc), status=status, content_type=JSON)


def _error_response(error: ApiError) -> web.Response:
    return web.Response(
        body=encode(error.status()), status=error.code, content_type=JSON, headers=error.headers
    )
