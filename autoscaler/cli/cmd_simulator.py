"""``foresight simulator serve``: a simulated cluster on loopback until interrupted."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from autoscaler.cli.base import Command, CommandError
from autoscaler.settings import Settings


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    serve = sub.add_parser(
        "serve",
        help="serve the Kubernetes API and kubelets of a scenario until stopped",
        description="Serve a simulated cluster on 127.0.0.1: a Kubernetes API subset (for "
        "kubectl and the kubernetes client) and one kubelet endpoint per node, driven by the "
        "scenario's load. Stops on Ctrl-C.",
    )
    serve.add_argument(
        "--scenario",
        default="default",
        metavar="FILE|default",
        help="scenario YAML file, or 'default' for the built-in one (default: %(default)s)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=6443,
        metavar="PORT",
        help="API server port on 127.0.0.1; 0 picks a free one (default: %(default)s)",
    )
    serve.add_argument(
        "--kubeconfig-out",
        type=Path,
        default=Path("simulator.kubeconfig"),
        metavar="FILE",
        help="where to write the kubeconfig for kubectl (default: %(default)s)",
    )
    serve.add_argument(
        "--speed",
        type=float,
        default=60.0,
        metavar="N",
        help="virtual seconds per real second; 1440 runs a day in a minute (default: %(default)s)",
    )
    serve.add_argument(
        "--tls",
        action="store_true",
        help="serve the API and the kubelets over HTTPS with a certificate of a fresh CA, and "
        "require a bearer token (--token, or a generated one); the kubeconfig carries the CA "
        "and the token",
    )
    serve.add_argument(
        "--token",
        metavar="TOKEN",
        help="require this bearer token on the API; kubectl sends tokens only over HTTPS, so "
        "use it with --tls for kubectl (the kubernetes client also sends it over plain HTTP)",
    )


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.speed <= 0:
        raise CommandError(f"--speed must be > 0, got {args.speed}")
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port must be between 0 and 65535, got {args.port}")
    # Imported here: the simulator is a development tool, not part of the service's start-up.
    from autoscaler.resource.crd import crd_manifest  # noqa: PLC0415
    from simulator.serve import SimulatorError, serve  # noqa: PLC0415

    try:
        return int(
            asyncio.run(
                serve(
                    args.scenario,
                    args.port,
                    args.kubeconfig_out,
                    args.speed,
                    args.token,
                    tls=args.tls,
                    # So that `kubectl get pas -A` works against it, as on a real cluster
                    # where the chart installed foresight.
                    objects=[crd_manifest()],
                )
            )
        )
    except SimulatorError as e:
        raise CommandError(str(e)) from e
    except OSError as e:
        raise CommandError(f"cannot serve on 127.0.0.1:{args.port}: {e.strerror}") from e


COMMAND = Command(
    name="simulator",
    help="serve a simulated Kubernetes cluster on loopback",
    description="`simulator serve` serves a Kubernetes API subset and kubelet endpoints driven "
    "by traces, and writes a kubeconfig for kubectl and the kubernetes client.",
    add_arguments=_add_arguments,
    run=_run,
)
