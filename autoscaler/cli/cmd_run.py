"""``foresight run``: the service, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging

from autoscaler.cli.base import Command, CommandError
from autoscaler.settings import Settings
from runtime.gil import favour_event_loop

log = logging.getLogger("foresight")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig to use (default: in-cluster config, else ~/.kube/config); same as "
        "FORESIGHT_KUBERNETES__KUBECONFIG",
    )


async def _serve(settings: Settings) -> int:
    from autoscaler.service import Service, ServiceFailed  # noqa: PLC0415 (heavy)
    from runtime.clock import RealClock  # noqa: PLC0415
    from runtime.signals import stop_on_signals  # noqa: PLC0415

    service = Service(settings, RealClock())
    stop = asyncio.Event()
    stop_on_signals(stop, reload=service.alerts.reload)
    try:
        await service.run(stop)
    except ServiceFailed as e:
        raise CommandError(f"{e}; the store was flushed and the Lease released") from e
    log.info("stopped")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.kubeconfig:
        kube = settings.kubernetes.model_copy(update={"kubeconfig": args.kubeconfig})
        settings = settings.model_copy(update={"kubernetes": kube})
    from kubernetes.config import ConfigException  # noqa: PLC0415

    from access import TlsFilesError, TokenFileError  # noqa: PLC0415
    from collectors.kubelet import KubeletTlsError  # noqa: PLC0415
    from tsdb import StoreLocked  # noqa: PLC0415

    favour_event_loop()
    try:
        return asyncio.run(_serve(settings))
    except ConfigException as e:
        raise CommandError(
            f"no Kubernetes configuration: {e} (set --kubeconfig or run inside a cluster)"
        ) from e
    except (KubeletTlsError, StoreLocked, TokenFileError, TlsFilesError) as e:
        raise CommandError(str(e)) from e
    except OSError as e:
        if e.filename is not None:  # a kubeconfig, token or data directory it cannot read
            raise CommandError(f"cannot read {e.filename}: {e.strerror}") from e
        server = settings.server
        raise CommandError(
            f"cannot serve on {server.host} ports {server.port} and {server.api_port}: {e.strerror}"
        ) from e


COMMAND = Command(
    name="run",
    help="run the autoscaler service (collect, forecast, scale, alert)",
    description="Run foresight as a service: list/watch the cluster, scrape kubelets and pods "
    "annotated prometheus.io/scrape (collectors.scrape_pods) into the store, forecast and "
    "scale every PredictiveAutoscaler (when this replica holds the leader "
    "Lease), serve /metrics, /healthz and /readyz on server.port and the API (silences, rules, "
    "alerts; every request authenticated and authorised as server.auth says) on "
    "server.api_port. SIGTERM or SIGINT stops "
    "gracefully: the Lease is released and the store flushed. SIGHUP reloads the rule files. "
    "If a supervised task dies, the service stops the same way and exits with code 1.",
    add_arguments=_add_arguments,
    run=_run,
)
