"""A simulated cluster and foresight's two HTTP servers, with the server settings a test picks.

The service is only constructed and served (no collection, no reconcile): what is under test
is who may reach which endpoint. Kubernetes mode talks to the simulator's TokenReview and
SubjectAccessReview through the official client, as in a cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from access import ApiRoute
from autoscaler.service import Service
from collectors.kube import api_client
from runtime.clock import VirtualClock
from simulator.cluster import SimulatedCluster
from simulator.scenario import parse_scenario
from tests.controller.conftest import START, settings_for

SCENARIO = """
name: access
seed: 1
tick: 10s
nodes:
  - {name: node, count: 1, cpu: "4", memory: 8Gi}
namespaces: [shop, ops]
workloads: []
"""

SILENCE = {
    "matchers": [{"name": "alertname", "value": "JobDown", "isRegex": False, "isEqual": True}],
    "startsAt": "2026-01-05T08:00:00Z",
    "endsAt": "2026-01-05T10:00:00Z",
    "createdBy": "test",
    "comment": "maintenance",
}

# token,user,uid,groups: one of each kind of right.
TOKENS = """\
admin-token-0123456789,alice,1001,"foresight:admin"
view-token-0123456789,bob,1002,foresight:view
nobody-token-0123456789,carol,1003,dev
"""


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """``foresight`` commands run in-process set up logging on the captured stderr; later
    tests must not log to it once it is closed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@dataclass
class Served:
    """The cluster, the service and a client for each of its ports."""

    cluster: SimulatedCluster
    clock: VirtualClock
    api: k8s.ApiClient
    service: Service
    metrics: httpx.AsyncClient
    http: httpx.AsyncClient

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.service.api_port}"

    async def token_for(self, namespace: str, account: str) -> str:
        """A ServiceAccount's token from the TokenRequest API (``kubectl create token``)."""
        core = k8s.CoreV1Api(self.api)
        body = k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name=account))
        await asyncio.to_thread(core.create_namespaced_service_account, namespace, body)
        request = k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[]))
        answer = await asyncio.to_thread(
            core.create_namespaced_service_account_token, account, namespace, request
        )
        return str(answer.status.token)

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def serve(
    tmp_path: Path,
    api_routes: Sequence[ApiRoute] = (),
    autoadvance: bool = False,
    **server: Any,
) -> AsyncIterator[Served]:
    """The service with ``server`` settings (host and ports: loopback, free) and extra API
    routes; ``autoadvance``: the clock jumps to the next sleeper (API retries) when idle."""
    clock = VirtualClock(start=START, autoadvance=autoadvance)
    cluster = SimulatedCluster(parse_scenario(SCENARIO, "access.yaml"), clock)
    await cluster.start(run_loop=False)
    kubeconfig = tmp_path / "kubeconfig"
    cluster.write_kubeconfig(kubeconfig)
    base = settings_for(tmp_path, kubeconfig)
    settings = base.model_copy(
        update={"server": base.server.model_validate({**base.server.model_dump(), **server})}
    )
    api = api_client(settings.kubernetes)
    service = Service(settings, clock, api=api, persistent=False, api_routes=api_routes)
    await service.serve_http()
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.port}") as metrics,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.api_port}") as http,
        ):
            yield Served(cluster, clock, api, service, metrics, http)
    finally:
        await service.close()
        api.close()
        await cluster.stop()
        await clock.aclose()
