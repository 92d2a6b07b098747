"""API aggregation: ``/apis/<group>/<version>/...`` of a registered ``APIService`` is proxied
to the Service behind it, as kube-apiserver's aggregator does.

An ``apiregistration.k8s.io/v1`` ``APIService`` with a ``spec.service`` claims its group and
version. A request for them is sent to the Service's endpoint: the first address and port of
the ``Endpoints`` object of the same name (kube-apiserver's ``--enable-aggregator-routing``),
or the Service's ``clusterIP`` when that is a loopback address. The connection is HTTPS,
verified with the APIService's ``caBundle`` for the name ``<service>.<namespace>.svc``
(``insecureSkipTLSVerify`` skips it). The caller is named as kube-apiserver names it: with
the front proxy's client certificate (:mod:`simulator.front_proxy`) and ``X-Remote-User`` /
``X-Remote-Group`` headers when the simulator has one, otherwise by forwarding the caller's
``Authorization`` header.

With a front proxy, :func:`publish_front_proxy` writes the ConfigMap
``kube-system/extension-apiserver-authentication`` aggregated servers read it from, as
kube-apiserver does at start.

A Service, Endpoints or address that cannot be found or reached is a 503 ``Status``, as the
aggregator answers. :meth:`Aggregator.check_availability` sets each APIService's
``Available`` condition by fetching its discovery document.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict

from simulator.api_core import ApiCore
from simulator.errors import ApiError
from simulator.front_proxy import FrontProxy
from simulator.objects import KubeObject, clone, rfc3339

__all__ = [
    "APISERVICE_PLURAL",
    "AUTH_CONFIGMAP",
    "Aggregator",
    "Backend",
    "Caller",
    "publish_front_proxy",
]

log = logging.getLogger("simulator.aggregation")

APISERVICE_PLURAL = ("apiregistration.k8s.io", "v1", "apiservices")
AUTH_CONFIGMAP = ("kube-system", "extension-apiserver-authentication")
_TIMEOUT = aiohttp.ClientTimeout(total=30)
# What is passed back of the aggregated server's answer.
_PASSED_HEADERS = ("Content-Type", "WWW-Authenticate", "Retry-After")


@dataclass(frozen=True)
class Caller:
    """Who a proxied request acts for (as the API server authenticated it)."""

    user: str
    groups: tuple[str, ...] = ()
    authorization: str | None = None  # the caller's own header, forwarded without a proxy


@dataclass(frozen=True)
class Backend:
    """Where an APIService's requests go."""

    apiservice: str
    url: str  # https://host:port
    server_name: str  # <service>.<namespace>.svc, what the certificate must name
    ca_pem: bytes | None  # None: insecureSkipTLSVerify


def _service_unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)


class Aggregator:
    """Routes the groups of APIServices to their Services (see the module)."""

    def __init__(self, core: ApiCore, front_proxy: FrontProxy | None = None) -> None:
        self.core = core
        self.front_proxy = front_proxy
        self._session: aiohttp.ClientSession | None = None

    # -- lookup ----------------------------------------------------------------------------

    def _apiservices(self) -> list[KubeObject]:
        rt = self.core.registry.get(*APISERVICE_PLURAL)
        if rt is None:
            return []
        return [s.obj for s in self.core.store.items(rt.storage_key)]

    def find(self, group: str, version: str) -> KubeObject | None:
        """The APIService with a Service that serves ``group/version``, if any."""
        for obj in self._apiservices():
            spec = obj.get("spec") or {}
            if spec.get("group") == group and spec.get("version") == version:
                return obj if spec.get("service") else None
        return None

    def groups(self) -> dict[str, list[str]]:
        """Aggregated group → versions, by descending ``versionPriority``."""
        found: dict[str, list[tuple[int, str]]] = {}
        for obj in self._apiservices():
            spec = obj.get("spec") or {}
            if spec.get("service") and spec.get("group") and spec.get("version"):
                priority = int(spec.get("versionPriority") or 0)
                found.setdefault(spec["group"], []).append((-priority, spec["version"]))
        return {g: [v for _, v in sorted(vs)] for g, vs in found.items()}

    def backend(self, apiservice: KubeObject) -> Backend:
        """Where ``apiservice`` is served; 503 when its Service or endpoints are missing."""
        spec = apiservice.get("spec") or {}
        ref = spec.get("service") or {}
        namespace, name = str(ref.get("namespace", "")), str(ref.get("name", ""))
        port = int(ref.get("port") or 443)
        services = self.core.registry.get("", "v1", "services")
        endpoints = self.core.registry.get("", "v1", "endpoints")
        assert services is not None and endpoints is not None
        service = self.core.store.get(services.storage_key, namespace, name)
        if service is None:
            raise _service_unavailable(f'service "{namespace}/{name}" not found')
        address = _endpoint(
            service.obj,
            port,
            (
                found.obj
                if (found := self.core.store.get(endpoints.storage_key, namespace, name))
                else None
            ),
        )
        if address is None:
            raise _service_unavailable(f'no endpoints available for service "{name}"')
        ca = None
        if not spec.get("insecureSkipTLSVerify"):
            try:
                ca = base64.b64decode(str(spec.get("caBundle") or ""), validate=True)
            except binascii.Error as e:
                raise _service_unavailable(f"caBundle of {_name(apiservice)}: {e}") from e
        host, target = address
        return Backend(_name(apiservice), f"https://{host}:{target}", f"{name}.{namespace}.svc", ca)

    # -- proxying --------------------------------------------------------------------------

    def _ssl(self, backend: Backend) -> ssl.SSLContext | bool:
        if backend.ca_pem is None:
            return False
        context = ssl.create_default_context()
        if backend.ca_pem:
            context.load_verify_locations(cadata=backend.ca_pem.decode("ascii", "replace"))
        if self.front_proxy is not None:
            self.front_proxy.load_into(context)
        return context

    def _headers(self, caller: Caller, accept: str | None) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        if accept:
            headers["Accept"] = accept
        if self.front_proxy is not None:
            headers["X-Remote-User"] = caller.user
            for group in caller.groups:
                headers.add("X-Remote-Group", group)
        elif caller.authorization:
            headers["Authorization"] = caller.authorization
        return headers

    async def forward(
        self,
        apiservice: KubeObject,
        method: str,
        path_qs: str,
        caller: Caller,
        accept: str | None = None,
        body: bytes | None = None,
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """Send one request to ``apiservice``'s backend: (status, body, passed headers)."""
        backend = self.backend(apiservice)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        try:
            async with self._session.request(
                method,
                backend.url + path_qs,
                headers=self._headers(caller, accept),
                data=body,
                ssl=self._ssl(backend),
                server_hostname=backend.server_name if backend.ca_pem is not None else None,
            ) as response:
                content = await response.read()
                passed = {h: response.headers[h] for h in _PASSED_HEADERS if h in response.headers}
                return response.status, content, passed
        except (aiohttp.ClientError, ssl.SSLError, OSError, TimeoutError) as e:
            log.info("%s: %s %s failed: %s", backend.apiservice, method, path_qs, e)
            raise _service_unavailable(
                f"error trying to reach service: {type(e).__name__}: {e}"
            ) from e

    async def check_availability(self, now: float) -> None:
        """Set ``status.conditions[Available]`` of every APIService with a Service."""
        rt = self.core.registry.get(*APISERVICE_PLURAL)
        if rt is None:
            return
        for obj in self._apiservices():
            spec = obj.get("spec") or {}
            if not spec.get("service"):
                condition = ("True", "Local", "Local APIServices are always available")
            else:
                path = f"/apis/{spec.get('group')}/{spec.get('version')}"
                caller = Caller("system:kube-aggregator", ("system:authenticated",))
                try:
                    code, _, _ = await self.forward(obj, "GET", path, caller, "application/json")
                except ApiError as e:
                    condition = ("False", "FailedDiscoveryCheck", e.message)
                else:
                    condition = (
                        ("True", "Passed", "all checks passed")
                        if 200 <= code < 300
                        else (
                            "False",
                            "FailedDiscoveryCheck",
                            f"failing or missing response from {path}: bad status {code}",
                        )
                    )
            _set_available(self.core, rt, obj, condition, now)

    async def close(self) -> None:
        """Close the connections to the backends."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def publish_front_proxy(core: ApiCore, front_proxy: FrontProxy) -> None:
    """Write :data:`AUTH_CONFIGMAP` with the front proxy's CA and header names (the
    namespace is created if missing)."""
    namespaces = core.registry.get("", "v1", "namespaces")
    configmaps = core.registry.get("", "v1", "configmaps")
    assert namespaces is not None and configmaps is not None
    namespace, name = AUTH_CONFIGMAP
    if core.store.get(namespaces.storage_key, "", namespace) is None:
        core.create(namespaces, "", {"metadata": {"name": namespace}})
    data = {
        "requestheader-client-ca-file": front_proxy.ca_pem.decode("ascii"),
        "requestheader-allowed-names": json.dumps([front_proxy.common_name]),
        "requestheader-username-headers": json.dumps(["X-Remote-User"]),
        "requestheader-group-headers": json.dumps(["X-Remote-Group"]),
        "requestheader-extra-headers-prefix": json.dumps(["X-Remote-Extra-"]),
    }
    obj = {"metadata": {"name": name, "namespace": namespace}, "data": data}
    if core.store.get(configmaps.storage_key, namespace, name) is None:
        core.create(configmaps, namespace, obj)
    else:
        core.replace(configmaps, namespace, name, obj)


def _name(obj: KubeObject) -> str:
    return str(obj["metadata"]["name"])


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint(
    service: KubeObject, port: int, endpoints: KubeObject | None
) -> tuple[str, int] | None:
    """(address, port) for the service port ``port``: from the Endpoints, else a loopback
    ``clusterIP``."""
    ports: Sequence[Any] = (service.get("spec") or {}).get("ports") or []
    entry = next((p for p in ports if int(p.get("port") or 0) == port), None)
    if entry is None:
        return None
    for subset in (endpoints or {}).get("subsets") or []:
        addresses = [a.get("ip") for a in subset.get("addresses") or [] if a.get("ip")]
        subset_ports = subset.get("ports") or []
        match = next(
            (
                p
                for p in subset_ports
                if (entry.get("name") and p.get("name") == entry.get("name"))
                or (not entry.get("name") and len(subset_ports) == 1)
            ),
            None,
        )
        if addresses and match is not None:
            return str(addresses[0]), int(match["port"])
    cluster_ip = str((service.get("spec") or {}).get("clusterIP") or "")
    if _loopback(cluster_ip):
        target = entry.get("targetPort")
        return cluster_ip, int(target) if isinstance(target, int) else port
    return None


def _set_available(
    core: ApiCore, rt: Any, obj: KubeObject, condition: tuple[str, str, str], now: float
) -> None:
    status, reason, message = condition
    old = next(
        (
            c
            for c in (obj.get("status") or {}).get("conditions") or []
            if c.get("type") == "Available"
        ),
        None,
    )
    if old is not None and (old.get("status"), old.get("reason"), old.get("message")) == condition:
        return
    since = old["lastTransitionTime"] if old and old.get("status") == status else rfc3339(now)
    new = clone(obj)
    new["status"] = {
        "conditions": [
            {
                "type": "Available",
                "status": status,
                "lastTransitionTime": since,
                "reason": reason,
                "message": message,
            }
        ]
    }
    new["metadata"].pop("resourceVersion", None)
    core.store.update(rt.storage_key, rt.group_resource, new)
