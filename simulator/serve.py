"""Serving a scenario from the command line until interrupted."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from runtime.clock import RealClock, VirtualClock
from runtime.signals import stop_on_signals
from simulator.cluster import SimulatedCluster
from simulator.errors import SimulatorError
from simulator.objects import KubeObject
from simulator.scenario import load_scenario
from simulator.tls import LOOPBACK_HOSTS, new_ca

__all__ = ["SimulatorError", "serve"]

log = logging.getLogger("simulator")


async def serve(
    scenario_name: str,
    port: int,
    kubeconfig_out: Path,
    speed: float,
    token: str | None,
    tls: bool = False,
    objects: Sequence[KubeObject] = (),
) -> int:
    """Run the scenario at ``speed`` until SIGINT/SIGTERM; returns the exit code.

    With ``tls``, the API server and the kubelets serve HTTPS with a certificate of a fresh
    CA, and require a bearer token (``token``, or a generated one): the kubeconfig carries
    both, and kubectl sends a token only over HTTPS. ``objects`` (CRDs, say) are created
    before the first request is served.
    """
    scenario = load_scenario(scenario_name)
    start = scenario.start if scenario.start is not None else RealClock().now()
    clock = VirtualClock(start=start, speed=speed)
    certificate = None
    kubelet_token = None
    if tls:
        certificate = new_ca().issue(LOOPBACK_HOSTS)
        token = token or secrets.token_urlsafe(24)
        # One token for the API and the kubelets, as a service account's token is accepted by
        # both (kubelets delegate authentication to the API server).
        kubelet_token = token
    cluster = SimulatedCluster(
        scenario, clock, port=port, token=token, kubelet_token=kubelet_token, tls=certificate
    )
    await cluster.start()
    for obj in objects:
        cluster.create(obj)
    stop = asyncio.Event()
    stop_on_signals(stop)
    try:
        cluster.write_kubeconfig(kubeconfig_out)
        sys.stdout.write(
            f"simulated cluster {scenario.name!r}: {len(cluster.kubelets.nodes)} nodes, "
            f"API at {cluster.api_url}, speed x{speed:g}\n"
            f"kubeconfig written to {kubeconfig_out}"
            f"{' (with the CA and the bearer token)' if tls else ''}\n"
            f"  kubectl --kubeconfig {kubeconfig_out} get nodes,pods,deploy -A\n"
            "press Ctrl-C to stop\n"
        )
        sys.stdout.flush()
        await stop.wait()
    finally:
        await cluster.stop()
        await clock.aclose()
    return 0
