"""The foresight processes of the chaos run: ``Service`` on a clock shared with the simulator.

``python -m bench.chaos_child CONFIG`` is a fork server: it imports everything foresight
needs, prints ``imported``, and then, for every line ``VIRTUAL_START MONOTONIC_ANCHOR SPEED``
on stdin, forks a process that loads the settings file as ``foresight --config CONFIG run``
does and runs the service until SIGTERM (it prints ``pid N``, and ``exit N CODE`` when that
process ends; CODE is negative for a signal). The parent kills those processes with SIGKILL.
Forking from a process that has imported everything makes a restart cost foresight's own
start (store replay, alert state, list/watch, the Lease) and not the interpreter's imports,
which on a loaded machine take seconds that accelerated time turns into simulated hours.

Virtual time is ``VIRTUAL_START`` at the system's monotonic time ``MONOTONIC_ANCHOR`` and runs
``SPEED`` times faster than real time: the monotonic clock is one for every process of the
machine, so the simulator in the parent and every service process agree on "now".
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

from autoscaler.logs import configure_logging
from autoscaler.service import Service
from autoscaler.settings import load_settings
from runtime.clock import VirtualClock
from runtime.signals import stop_on_signals

# The client's API classes load on first use, seconds each on a busy machine.
_KUBE_APIS = (
    "ApiextensionsV1Api",
    "AppsV1Api",
    "AuthenticationV1Api",
    "AuthorizationV1Api",
    "AutoscalingV2Api",
    "BatchV1Api",
    "CoordinationV1Api",
    "CoreV1Api",
    "CustomObjectsApi",
)


def _import_lazy_modules() -> None:
    """What the service would import on first use: the forecaster's model library and the
    Kubernetes client's API classes."""
    import kubernetes.client  # noqa: PLC0415
    import sklearn.ensemble  # noqa: F401, PLC0415

    for name in _KUBE_APIS:
        getattr(kubernetes.client, name, None)


def shared_clock(virtual_start: float, anchor: float, speed: float) -> VirtualClock:
    """A clock that reads what the parent's clock reads at this instant."""
    return VirtualClock(start=virtual_start + (time.monotonic() - anchor) * speed, speed=speed)


async def serve(config: Path, clock: VirtualClock) -> None:
    """Run the service until SIGTERM or SIGINT."""
    settings = load_settings(config)
    configure_logging(settings.log.format, settings.log.level)
    service = Service(settings, clock)
    stop = asyncio.Event()
    stop_on_signals(stop, reload=service.alerts.reload)
    try:
        await service.run(stop)
    finally:
        await clock.aclose()


def _say(line: str) -> None:
    # os.write, not print: a forked child must not inherit a held lock of sys.stdout.
    os.write(1, (line + "\n").encode())


def _reap() -> None:
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            time.sleep(0.02)
            continue
        _say(f"exit {pid} {os.waitstatus_to_exitcode(status)}")


def _service_process(config: Path, line: str) -> None:
    """In the forked child: stdin and stdout are the fork server's, not ours."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    code = 0
    try:
        start, anchor, speed = (float(x) for x in line.split())
        asyncio.run(serve(config, shared_clock(start, anchor, speed)))
    except BaseException as e:  # the exit code is the report
        sys.stderr.write(f"foresight failed: {type(e).__name__}: {e}\n")
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str]) -> int:
    (config,) = argv
    _import_lazy_modules()
    _say("imported")
    threading.Thread(target=_reap, name="reaper", daemon=True).start()
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            _service_process(Path(config), line)
        _say(f"pid {pid}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
